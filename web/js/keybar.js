// @ts-check
/**
 * The touch key bar: the keys a phone keyboard lacks (Esc, Tab, Ctrl, arrows, a few symbols).
 * Keys go in through `term.input()`, so they take exactly the path typed keys take.
 */

import { find } from "./dom.js";

const STORAGE_KEY = "keybar";
const ESC = "\x1b";
/** @type {Record<string, string>} */
const ARROW_FINALS = { up: "A", down: "B", right: "C", left: "D" };
/** @type {Record<string, string>} */
const KEYS = { esc: ESC, tab: "\t" };

/**
 * The control code a key makes with Ctrl held, or null if Ctrl does nothing to it:
 * letters and @[\]^_ map to 0x00-0x1f, `?` to DEL, as on a real terminal.
 * @param {string} char
 */
function controlCode(char) {
  if (char === "?") return "\x7f";
  if (char === " ") return "\x00";
  const code = char.toUpperCase().charCodeAt(0);
  if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code & 0x1f);
  if (char === "|") return "\x1c"; // Ctrl+| is Ctrl+\ on US keyboards
  if (char === "~") return "\x1e";
  if (char === "/") return "\x1f";
  return null;
}

/** localStorage throws in some private-browsing modes; the bar then just forgets. */
function readPreference() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** @param {string} value */
function savePreference(value) {
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    // not remembered
  }
}

export class KeyBar {
  #bar;
  #toggle;
  #term;
  #ctrlButton;
  #ctrlArmed = false;
  /** Set by the page: PgUp (+1) / PgDn (-1) scroll the history a screen at a time. */
  onPage = (/** @type {number} */ _pages) => {};

  /**
   * @param {HTMLElement} bar
   * @param {HTMLButtonElement} toggle
   * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
   */
  constructor(bar, toggle, term) {
    this.#bar = bar;
    this.#toggle = toggle;
    this.#term = term;
    this.#ctrlButton = find(bar, '[data-key="ctrl"]');

    // Keep focus (and with it the phone's keyboard) on the terminal while a key is tapped.
    bar.addEventListener("pointerdown", (event) => event.preventDefault());
    bar.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      if (button) this.#press(button);
    });
    toggle.addEventListener("click", () => this.#setVisible(this.#bar.hidden === true, true));

    const saved = readPreference();
    const touch = window.matchMedia("(pointer: coarse)").matches;
    this.#setVisible(saved === null ? touch : saved === "shown", false);
  }

  /**
   * Applies a sticky Ctrl to typed input (wired in as TerminalConnection's transformInput).
   * @param {string} data
   */
  transformInput = (data) => {
    if (!this.#ctrlArmed || data === "") return data;
    this.#setCtrl(false);
    const code = controlCode(data[0]);
    return code === null ? data : code + data.slice(1);
  };

  /** @param {HTMLElement} button */
  #press(button) {
    const { key, text } = button.dataset;
    if (key === "ctrl") {
      this.#setCtrl(!this.#ctrlArmed);
    } else if (key === "pgup" || key === "pgdn") {
      this.onPage(key === "pgup" ? 1 : -1);
    } else if (key && Object.hasOwn(ARROW_FINALS, key)) {
      this.#sendArrow(ARROW_FINALS[key]);
    } else if (key && Object.hasOwn(KEYS, key)) {
      this.#setCtrl(false);
      this.#term.input(KEYS[key], true);
    } else if (text) {
      this.#term.input(text, true); // transformInput applies a pending Ctrl
    }
    this.#term.focus();
  }

  /**
   * Arrows follow the terminal's cursor-key mode (tmux turns on application mode), and Ctrl
   * makes the xterm "modified key" form tmux and readline understand (Ctrl+← = word left).
   * @param {string} final
   */
  #sendArrow(final) {
    if (this.#ctrlArmed) {
      this.#setCtrl(false);
      this.#term.input(`${ESC}[1;5${final}`, true);
      return;
    }
    const application = this.#term.modes.applicationCursorKeysMode;
    this.#term.input(`${ESC}${application ? "O" : "["}${final}`, true);
  }

  /** @param {boolean} armed */
  #setCtrl(armed) {
    this.#ctrlArmed = armed;
    this.#ctrlButton.setAttribute("aria-pressed", String(armed));
  }

  /**
   * @param {boolean} visible
   * @param {boolean} remember only an explicit toggle is remembered; otherwise the device decides
   */
  #setVisible(visible, remember) {
    this.#bar.hidden = !visible;
    this.#toggle.setAttribute("aria-pressed", String(visible));
    if (!visible) this.#setCtrl(false);
    if (remember) {
      savePreference(visible ? "shown" : "hidden");
      this.#term.focus();
    }
  }
}
