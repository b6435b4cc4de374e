/**
 * The find box over the terminal (Ctrl+Shift+F): searches xterm's buffer, scrollback included.
 * Enter finds the next match, Shift+Enter the previous one, Esc closes.
 */

/** Highlight every match, not only the current one; colours must be #RRGGBB. */
const SEARCH_OPTIONS = {
  decorations: {
    matchBackground: "#5c4a12",
    matchOverviewRuler: "#d7ba7d",
    activeMatchBackground: "#a8801a",
    activeMatchColorOverviewRuler: "#ffd866",
  },
};

export class SearchBox {
  #box;
  #input;
  #count;
  #addon;
  #term;

  /**
   * @param {HTMLElement} box
   * @param {import("/static/node_modules/@xterm/addon-search/lib/addon-search.mjs").SearchAddon} addon
   * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
   */
  constructor(box, addon, term) {
    this.#box = box;
    this.#input = box.querySelector("input");
    this.#count = box.querySelector("output");
    this.#addon = addon;
    this.#term = term;

    addon.onDidChangeResults(({ resultIndex, resultCount }) => {
      this.#count.textContent =
        resultCount === 0 ? "none" : resultIndex >= 0 ? `${resultIndex + 1}/${resultCount}` : `${resultCount}+`;
    });
    this.#input.addEventListener("input", () => this.#find("next", true));
    this.#input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.#find(event.shiftKey ? "previous" : "next", false);
      } else if (event.key === "Escape") {
        event.preventDefault();
        this.close();
      }
    });
  }

  open() {
    this.#box.hidden = false;
    this.#input.select();
    this.#input.focus();
    if (this.#input.value) this.#find("next", true);
  }

  close() {
    this.#box.hidden = true;
    this.#addon.clearDecorations();
    this.#count.textContent = "";
    this.#term.focus();
  }

  /**
   * @param {"next" | "previous"} direction
   * @param {boolean} incremental while typing, grow the current match instead of jumping past it
   */
  #find(direction, incremental) {
    const query = this.#input.value;
    if (!query) {
      this.#addon.clearDecorations();
      this.#count.textContent = "";
      return;
    }
    if (direction === "next") {
      this.#addon.findNext(query, { ...SEARCH_OPTIONS, incremental });
    } else {
      this.#addon.findPrevious(query, SEARCH_OPTIONS);
    }
  }
}
