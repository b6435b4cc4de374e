// @ts-check
/**
 * The page's own right-click menu over the terminal: Copy, Paste, Find, Split, Clear. It replaces
 * both the browser's menu and tmux's pane menu (unbound in tmux.conf: its "Kill" item, released
 * over by accident, killed the shell). Arrow keys move, Enter picks, Esc closes.
 */

import { copyText, lastCopied } from "./clipboard.js";

/** tmux's prefix (tmux.conf: Ctrl-]) and its split binding: a split needs no API of its own. */
const TMUX_SPLIT = '\x1d"';
/** Ctrl+L: the shell redraws its prompt on a clean screen. */
const CLEAR_SCREEN = "\x0c";

/**
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {{find(): void, notify(message: string): void, hasTmux(): boolean}} MenuActions
 */

export class TerminalMenu {
  #menu;
  #term;
  #actions;
  /** The selection when the right button went down: pressing it may clear xterm's selection. */
  #selection = "";

  /**
   * @param {HTMLElement} menu an element with role=menu and one button[data-action] per item
   * @param {HTMLElement} container the terminal's element
   * @param {Terminal} term
   * @param {MenuActions} actions
   */
  constructor(menu, container, term, actions) {
    this.#menu = menu;
    this.#term = term;
    this.#actions = actions;
    container.addEventListener(
      "mousedown",
      (event) => {
        if (event.button === 2) this.#selection = this.#term.hasSelection() ? this.#term.getSelection() : lastCopied();
      },
      { capture: true },
    );
    // Capture phase: before xterm, whose own handler would let the browser's menu open.
    container.addEventListener(
      "contextmenu",
      (event) => {
        event.preventDefault();
        event.stopPropagation();
        this.open(event.clientX, event.clientY);
      },
      { capture: true },
    );
    menu.addEventListener("click", (event) => {
      const item = /** @type {HTMLElement} */ (event.target).closest("[data-action]");
      if (item instanceof HTMLButtonElement && !item.disabled) void this.#run(item.dataset.action ?? "");
    });
    menu.addEventListener("keydown", (event) => this.#onKey(event));
    document.addEventListener("pointerdown", (event) => {
      if (!menu.hidden && !menu.contains(/** @type {Node} */ (event.target))) this.close(false);
    });
  }

  /** @param {number} x @param {number} y where the pointer was, in viewport pixels */
  open(x, y) {
    this.#item("copy").disabled = !this.#selection;
    this.#item("split").disabled = !this.#actions.hasTmux();
    this.#menu.hidden = false;
    // Kept inside the window, however near the edge the click was.
    const { offsetWidth: width, offsetHeight: height } = this.#menu;
    this.#menu.style.left = `${Math.max(0, Math.min(x, window.innerWidth - width))}px`;
    this.#menu.style.top = `${Math.max(0, Math.min(y, window.innerHeight - height))}px`;
    this.#items()[0]?.focus();
  }

  /** @param {boolean} [refocus] give the keyboard back to the terminal */
  close(refocus = true) {
    if (this.#menu.hidden) return;
    this.#menu.hidden = true;
    if (refocus) this.#term.focus();
  }

  /** @param {string} action */
  async #run(action) {
    // Keys first, focus after: tmux 3.3 misreads its prefix when a focus report comes in the same read.
    this.close(false);
    switch (action) {
      case "copy":
        await copyText(this.#selection);
        break;
      case "paste":
        try {
          this.#term.paste(await navigator.clipboard.readText());
        } catch {
          this.#actions.notify("The browser did not allow reading the clipboard: paste with Ctrl+Shift+V");
        }
        break;
      case "find":
        this.#actions.find();
        break;
      case "split":
        this.#term.input(TMUX_SPLIT, true);
        break;
      case "clear":
        this.#term.clearSelection();
        this.#term.input(CLEAR_SCREEN, true);
        break;
    }
    if (action !== "find") this.#term.focus();
  }

  /** @param {KeyboardEvent} event */
  #onKey(event) {
    const items = this.#items();
    const at = items.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length]?.focus();
    } else if (event.key === "Tab") {
      this.close();
    }
  }

  /** @returns {HTMLButtonElement[]} the items that can be picked now */
  #items() {
    return [...this.#menu.querySelectorAll("button[data-action]")].filter(
      /** @returns {item is HTMLButtonElement} */ (item) => item instanceof HTMLButtonElement && !item.disabled,
    );
  }

  /** @param {string} action */
  #item(action) {
    return /** @type {HTMLButtonElement} */ (this.#menu.querySelector(`[data-action="${action}"]`));
  }
}
