/**
 * Getting text between the terminal and the system clipboard: copy shortcuts, copy-on-select,
 * and OSC 52 (how tmux copy-mode selections reach the browser).
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

/**
 * The OSC 52 clipboard provider for ClipboardAddon. It differs from the stock one in two ways:
 * it accepts every selection target, because tmux sends an empty one that the stock provider
 * ignores; and it never reads, so a program in the terminal cannot fetch the user's clipboard
 * with an OSC 52 query.
 */
export const osc52Provider = {
  readText() {
    return "";
  },
  /** @param {string} _selection @param {string} text */
  writeText(_selection, text) {
    return copyText(text).catch(() => {});
  },
};

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
