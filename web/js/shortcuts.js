// @ts-check
/**
 * Browser-side shortcuts: Ctrl+Shift+C copy, Ctrl+Shift+V paste, Ctrl+Shift+F find. Ctrl+Shift
 * combinations are free in a terminal (Ctrl+C must stay SIGINT), which is why Linux terminals use
 * them too. They are caught before xterm, so the shell never sees them.
 */

import { copyText, pasteFromShortcut } from "./clipboard.js";

/**
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 * @param {{find(): void}} actions
 */
export function installShortcuts(term, actions) {
  /** @type {Record<string, (event: KeyboardEvent) => void>} by KeyboardEvent.code, so any layout works */
  const handlers = {
    KeyC: (event) => {
      event.preventDefault();
      if (term.hasSelection()) copyText(term.getSelection()).catch(() => {});
    },
    // No preventDefault: the browser's own paste is wanted; see pasteFromShortcut.
    KeyV: () => pasteFromShortcut(term),
    KeyF: (event) => {
      event.preventDefault();
      actions.find();
    },
  };

  term.attachCustomKeyEventHandler((event) => {
    const handler = handlers[event.code];
    if (!handler || !event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return true;
    // xterm asks about keydown, keypress and keyup alike; act once, swallow all three.
    if (event.type === "keydown") handler(event);
    return false;
  });
}
