// @ts-check
/**
 * The find box over the terminal (Ctrl+Shift+F). With tmux it searches the pane's whole tmux
 * history on the server (GET /api/sessions/{name}/search) and jumps there through copy mode;
 * without tmux (degraded shells) it searches xterm's own scrollback. Enter finds the next older
 * match, Shift+Enter the next newer one, Esc closes.
 */

import { request } from "./api.js";
import { find } from "./dom.js";

/** Highlight every match, not only the current one; colours must be #RRGGBB. */
const SEARCH_OPTIONS = {
  decorations: {
    matchBackground: "#5c4a12",
    matchOverviewRuler: "#d7ba7d",
    activeMatchBackground: "#a8801a",
    activeMatchColorOverviewRuler: "#ffd866",
  },
};
const TYPING_PAUSE_MS = 250;
/** After a jump, the screen tmux redraws is highlighted once it has had time to arrive. */
const HIGHLIGHT_DELAY_MS = 150;

/**
 * @typedef {{line: number, offset: number, text: string}} Match
 * @typedef {import("./history.js").TmuxHistory} TmuxHistory
 */

export class SearchBox {
  #box;
  #input;
  #count;
  #addon;
  #term;
  #history;
  #session;
  /** @type {{query: string, matches: Match[], truncated: boolean, history: number} | null} */
  #results = null;
  #current = -1;
  #typingTimer = 0;
  #generation = 0;

  /**
   * @param {HTMLElement} box
   * @param {import("/static/node_modules/@xterm/addon-search/lib/addon-search.mjs").SearchAddon} addon
   * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
   * @param {TmuxHistory} history
   * @param {() => string} session the session shown now
   */
  constructor(box, addon, term, history, session) {
    this.#box = box;
    this.#input = /** @type {HTMLInputElement} */ (find(box, "input"));
    this.#count = find(box, "output");
    this.#addon = addon;
    this.#term = term;
    this.#history = history;
    this.#session = session;

    addon.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (this.#history.active) return; // the count is the server's then
      this.#count.textContent =
        resultCount === 0 ? "none" : resultIndex >= 0 ? `${resultIndex + 1}/${resultCount}` : `${resultCount}+`;
    });
    this.#input.addEventListener("input", () => {
      if (!this.#history.active) {
        this.#findLocal("next", true);
        return;
      }
      clearTimeout(this.#typingTimer);
      this.#typingTimer = setTimeout(() => void this.#findInHistory(0), TYPING_PAUSE_MS);
    });
    this.#input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        if (this.#history.active) void this.#findInHistory(event.shiftKey ? 1 : -1);
        else this.#findLocal(event.shiftKey ? "previous" : "next", false);
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
    if (this.#input.value && !this.#history.active) this.#findLocal("next", true);
  }

  close() {
    this.#box.hidden = true;
    this.#addon.clearDecorations();
    this.#count.textContent = "";
    this.#results = null;
    this.#term.focus();
  }

  /**
   * Search the server (again if the query changed), then step `step` matches from the current one
   * (0: the most recent) and jump there.
   * @param {number} step -1 older, +1 newer, 0 newest
   */
  async #findInHistory(step) {
    const query = this.#input.value;
    if (!query.trim()) {
      this.#results = null;
      this.#count.textContent = "";
      this.#addon.clearDecorations();
      return;
    }
    if (!this.#results || this.#results.query !== query) {
      const generation = ++this.#generation;
      this.#count.textContent = "…";
      let answer;
      try {
        const path = `/api/sessions/${encodeURIComponent(this.#session())}/search?q=${encodeURIComponent(query)}`;
        answer = await (await request(path)).json();
      } catch (error) {
        if (generation === this.#generation) this.#count.textContent = /** @type {Error} */ (error).message;
        return;
      }
      if (generation !== this.#generation || this.#input.value !== query) return; // typed on meanwhile
      this.#results = { query, matches: answer.matches, truncated: answer.truncated, history: answer.history };
      this.#current = answer.matches.length; // one past the newest: step -1 or 0 lands on it
      if (step === 0) step = -1;
    }
    const { matches, truncated, history } = this.#results;
    if (matches.length === 0) {
      this.#count.textContent = "none";
      this.#addon.clearDecorations();
      return;
    }
    this.#current = (this.#current + step + matches.length) % matches.length;
    const match = matches[this.#current];
    this.#count.textContent = `${this.#current + 1}/${matches.length}${truncated ? "+" : ""}`;
    this.#box.dataset.line = String(match.line);
    // The match lands mid-screen, with context above and below; one on the live screen needs no scrolling.
    this.#history.scrollTo(match.line >= history ? 0 : match.offset + Math.floor(this.#term.rows / 2));
    setTimeout(() => this.#addon.findNext(query, { ...SEARCH_OPTIONS, incremental: false }), HIGHLIGHT_DELAY_MS);
  }

  /**
   * @param {"next" | "previous"} direction
   * @param {boolean} incremental while typing, grow the current match instead of jumping past it
   */
  #findLocal(direction, incremental) {
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
