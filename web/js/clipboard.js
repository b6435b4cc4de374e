// @ts-check
/**
 * Getting text between the terminal and the system clipboard: copy shortcuts, copy-on-select,
 * and OSC 52 (how tmux copy-mode selections and programs' copies reach the browser).
 */

/** What was last copied from the terminal (the menu's Copy offers it again once the selection is gone). */
let lastCopiedText = "";

/** The text last copied from the terminal, by any route (selection, shortcut, menu, OSC 52). */
export function lastCopied() {
  return lastCopiedText;
}

/** Event on `window` after each successful copy; the page shows "Copied" for it. */
export const COPIED_EVENT = "terminal-copied";

/** @param {string} text */
function copied(text) {
  lastCopiedText = text;
  window.dispatchEvent(new CustomEvent(COPIED_EVENT, { detail: { characters: text.length } }));
}

/**
 * Writes to the system clipboard. navigator.clipboard is missing outside secure contexts (plain
 * http on a LAN address), where the old execCommand route still works inside a user gesture.
 * @param {string} text
 */
export async function copyText(text) {
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text);
    copied(text);
    return;
  } catch {
    // fall through to the legacy path
  }
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.style.cssText = "position:fixed;top:0;left:0;opacity:0";
  const focused = /** @type {HTMLElement | null} */ (document.activeElement);
  document.body.append(scratch);
  scratch.select();
  try {
    if (document.execCommand("copy")) copied(text);
    else throw new Error("the browser refused to copy");
  } finally {
    scratch.remove();
    focused?.focus();
  }
}

/** localStorage key: "off" stops programs in the terminal from writing the clipboard. */
export const CLIPBOARD_WRITES_KEY = "clipboard-writes";
/** A copy this soon after the user's own click or key in the terminal is theirs (tmux copy mode). */
const USER_GESTURE_MS = 1_500;

/** @returns {boolean} */
export function clipboardWritesAllowed() {
  try {
    return localStorage.getItem(CLIPBOARD_WRITES_KEY) !== "off";
  } catch {
    return true;
  }
}

/** @param {boolean} allowed */
export function setClipboardWritesAllowed(allowed) {
  try {
    if (allowed) localStorage.removeItem(CLIPBOARD_WRITES_KEY);
    else localStorage.setItem(CLIPBOARD_WRITES_KEY, "off");
  } catch {
    // storage disabled: the choice lasts until the page reloads at most
  }
}

/**
 * @param {string} payload base64 of UTF-8 text
 * @returns {string | null}
 */
function decodeBase64Text(payload) {
  try {
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * OSC 52 from the terminal, in place of the stock clipboard addon (which answers queries):
 * - a query (`52;c;?`) is never answered: a program must not read the user's clipboard;
 * - a write right after the user's own click or key in the terminal is their tmux copy-mode
 *   selection, and is copied silently;
 * - any other write is a program's: it is copied and named in a toast ("a program in main copied
 *   42 characters"), with a button that turns such writes off (remembered in localStorage); while
 *   they are off the toast says what was refused and offers to turn them back on.
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 * @param {HTMLElement} element the terminal's container
 * @param {{session: () => string, toast: import("./status.js").Toast}} page
 */
export function installOsc52(term, element, page) {
  let lastGesture = -Infinity;
  const gesture = () => {
    lastGesture = performance.now();
  };
  element.addEventListener("pointerup", gesture, { capture: true });
  element.addEventListener("keydown", gesture, { capture: true });
  term.parser.registerOscHandler(52, (data) => {
    const separator = data.indexOf(";");
    if (separator < 0) return true;
    const payload = data.slice(separator + 1);
    if (payload === "?" || payload === "") return true; // query (or clear): no answer, no change
    const text = decodeBase64Text(payload);
    if (text === null) return true;
    if (performance.now() - lastGesture < USER_GESTURE_MS) {
      copyText(text).catch(() => {});
      return true;
    }
    const who = `a program in ${page.session() || "this session"}`;
    const count = `${[...text].length} characters`;
    if (!clipboardWritesAllowed()) {
      page.toast.show(`${who} tried to copy ${count}; clipboard writes are off`, {
        label: "Allow",
        action: () => setClipboardWritesAllowed(true),
      });
      return true;
    }
    // After the copy: copying announces itself ("Copied"), and this toast, which names the program
    // and offers to turn such writes off, must be the one left showing.
    const named = () =>
      page.toast.show(`${who} copied ${count}`, {
        label: "Turn off",
        action: () => setClipboardWritesAllowed(false),
      });
    copyText(text).then(named, named);
    return true;
  });
}

/**
 * Copies an xterm selection as soon as the mouse is released, like most Linux terminals. Tied to
 * mouseup rather than onSelectionChange so that search matches (which xterm shows as a selection)
 * do not overwrite the clipboard.
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 * @param {HTMLElement} element the terminal's container
 */
export function enableCopyOnSelect(term, element) {
  element.addEventListener("mouseup", () => {
    // xterm finishes the selection in its own mouseup handler; read it after that has run.
    setTimeout(() => {
      if (term.hasSelection()) copyText(term.getSelection()).catch(() => {});
    });
  });
}

/**
 * Pastes on Ctrl+Shift+V. The browser's own paste (Ctrl+Shift+V is "paste as plain text" in
 * Chrome and Firefox) needs no permission prompt, so it is left to happen and xterm's paste
 * handler picks it up; only where it does not happen (macOS) is the clipboard read directly.
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 */
export function pasteFromShortcut(term) {
  let nativePaste = false;
  const seen = () => {
    nativePaste = true;
  };
  document.addEventListener("paste", seen, { capture: true, once: true });
  // The native paste, if any, fires in the same task as the keydown; this runs after it.
  setTimeout(async () => {
    document.removeEventListener("paste", seen, { capture: true });
    if (nativePaste || !navigator.clipboard?.readText) return;
    try {
      term.paste(await navigator.clipboard.readText());
    } catch {
      // permission refused: nothing to paste
    }
  });
}
