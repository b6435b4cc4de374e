// @ts-check
/**
 * The page's own keys: tabs, focus, font size and help. Tab keys are Alt+Shift+letter or arrow:
 * browsers keep Ctrl+T/W/N/Tab (and their Shift forms) for themselves, and Ctrl+letter belongs to
 * the shell; in readline Alt+Shift+letter only repeats Alt+letter, which still works. Caught in the
 * capture phase, before xterm.js sees them, so the shell never gets them.
 */

import { addKeys } from "./help.js";

/**
 * @typedef {{
 *   newTab(): void, nextTab(): void, previousTab(): void, closeTab(): void, renameTab(): void,
 *   focusTabs(): void, help(): void, fontBigger(): void, fontSmaller(): void, fontReset(): void,
 * }} PageActions
 */

/** @param {PageActions} actions */
export function installPageKeys(actions) {
  /** @type {Record<string, () => void>} Alt+Shift + KeyboardEvent.code, so any layout works */
  const altShift = {
    KeyN: actions.newTab,
    ArrowRight: actions.nextTab,
    ArrowLeft: actions.previousTab,
    KeyW: actions.closeTab,
    KeyR: actions.renameTab,
    KeyT: actions.focusTabs,
    Slash: actions.help,
  };
  /** @type {Record<string, () => void>} Ctrl (Cmd on a Mac) + KeyboardEvent.key */
  const font = {
    "=": actions.fontBigger,
    "+": actions.fontBigger,
    "-": actions.fontSmaller,
    0: actions.fontReset,
  };
  window.addEventListener(
    "keydown",
    (event) => {
      /** @type {(() => void) | undefined} */
      let action;
      if (event.altKey && event.shiftKey && !event.ctrlKey && !event.metaKey) action = altShift[event.code];
      else if ((event.ctrlKey || event.metaKey) && !event.altKey) action = font[event.key];
      if (!action) return;
      event.preventDefault(); // the browser's zoom, or xterm.js's escape sequence
      event.stopPropagation();
      action();
    },
    { capture: true },
  );

  addKeys("Tabs", [
    { keys: "Alt+Shift+N", what: "New session" },
    { keys: "Alt+Shift+→ / Alt+Shift+←", what: "Next / previous session" },
    { keys: "Alt+Shift+W", what: "Close this session (asks first)" },
    { keys: "Alt+Shift+R / F2 / double-click", what: "Rename the session (kept in tmux)" },
    { keys: "Alt+Shift+T", what: "Leave the terminal: focus the tab bar" },
    { keys: "← / → / Home / End", what: "In the tab bar: move between tabs" },
    { keys: "Enter / Space", what: "In the tab bar: open the tab (Enter on the open one: back to it)" },
    { keys: "Delete", what: "In the tab bar: close the tab" },
    { keys: "Esc", what: "In the tab bar: back to the terminal" },
  ]);
  addKeys("View", [
    { keys: "Ctrl+= / Ctrl+- / Ctrl+0", what: "Bigger / smaller / default font (Cmd on a Mac)" },
    { keys: "Alt+Shift+/", what: "This list of keys" },
  ]);
}
