// @ts-check
/**
 * Keys the agent CLIs need that a plain xterm.js gets wrong, and the list of them for the help.
 *
 * Shift+Enter: xterm.js sends a plain CR, which submits a half-written prompt. ESC CR (what
 * Alt+Enter sends) inserts a newline in Claude Code, Gemini CLI, OpenCode and Codex alike, and
 * bash ignores it (tests/model_proxy/test_agent_keys.py proves it per agent).
 * Ctrl+V: xterm.js sends ^V, and the agent then looks for an image on the server's clipboard,
 * which has none. Left to the browser, it pastes the browser's clipboard: text through xterm's
 * paste, images and files through the upload (files.js).
 */

export const NEWLINE_IN_PROMPT = "\x1b\r";

/**
 * Every key this page adds to a terminal, for the `?` help and the README; the help's own row shape,
 * as pagekeys.js uses for the page's keys.
 * @type {import("./help.js").KeyRow[]}
 */
export const KEYS = [
  { keys: "Shift+Enter", what: "New line in an agent's prompt (sends Esc+Enter, as Alt+Enter does)" },
  { keys: "Ctrl+V · Cmd+V", what: "Paste from the browser's clipboard; an image or file is uploaded and its path typed" },
  { keys: "Ctrl+Shift+V", what: "Paste (as in Linux terminals)" },
  { keys: "Ctrl+Shift+C", what: "Copy the selection" },
  { keys: "Ctrl+Shift+F", what: "Find" },
  { keys: "Drop files", what: "Upload to ~/uploads and type their paths" },
  { keys: "download FILE", what: "(in a shell) Download FILE through the page" },
];

/**
 * Catches the keys at `container` in the capture phase, before xterm.js's own handler on its
 * textarea, without taking xterm's single custom key handler (shortcuts.js has it).
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 * @param {HTMLElement} container
 */
export function installAgentKeys(term, container) {
  container.addEventListener(
    "keydown",
    (event) => {
      if (event.isComposing) return;
      const only = (/** @type {"shift" | "ctrl" | "meta"} */ modifier) =>
        event.shiftKey === (modifier === "shift") &&
        event.ctrlKey === (modifier === "ctrl") &&
        event.metaKey === (modifier === "meta") &&
        !event.altKey;
      if (event.key === "Enter" && only("shift")) {
        event.preventDefault();
        event.stopPropagation();
        term.input(NEWLINE_IN_PROMPT, true);
      } else if (event.code === "KeyV" && (only("ctrl") || only("meta"))) {
        // Not prevented: the browser's paste follows and reaches xterm (text) or files.js (files).
        event.stopPropagation();
      }
    },
    { capture: true },
  );
}
