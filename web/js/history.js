// @ts-check
/**
 * One history, tmux's: the wheel, the page's scrollbar, a touch swipe and the key bar's PgUp/PgDn
 * all move through the pane's tmux history (copy mode, via `scroll` messages; PROTOCOL.md), and
 * the scrollbar shows where the view is in it. xterm.js keeps no scrollback of its own then.
 * Where the gateway has no tmux (`hello` says history "local") xterm.js scrolls as usual.
 */

import { PROTOCOL } from "/js/protocol.js";

/** A wheel notch (Chrome and Firefox report 100 px, or 3 lines) moves three lines, as xterm does. */
const LINES_PER_NOTCH = 3;
const PIXELS_PER_NOTCH = 100;
/** Notches closer together than this are one fast spin, which speeds up (up to MAX_SPEEDUP). */
const SPIN_GAP_MS = 80;
const MAX_SPEEDUP = 4;
/** While output flows the scrollbar asks tmux how long the history is, at most this often. */
const REFRESH_MS = 1_000;
const MIN_THUMB_PX = 24;

/**
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {import("./connection.js").TerminalConnection} TerminalConnection
 * @typedef {{in_mode: boolean, position: number, history: number, rows: number}} HistoryState
 */

export class TmuxHistory {
  #term;
  #bar;
  #thumb;
  /** @type {TerminalConnection | null} */
  #connection = null;
  /** @type {HistoryState} */
  state = { in_mode: false, position: 0, history: 0, rows: 0 };
  /** Lines asked for and not yet sent (sent once per animation frame). */
  #pendingLines = 0;
  #pendingTo = -1;
  #frame = 0;
  #fraction = 0;
  #lastWheelAt = 0;
  #spin = 0;
  #refreshTimer = 0;

  /**
   * @param {Terminal} term
   * @param {HTMLElement} container the terminal's element (wheel and touch land there)
   * @param {HTMLElement} bar the scrollbar track; its first child is the thumb
   */
  constructor(term, container, bar) {
    this.#term = term;
    this.#bar = bar;
    this.#thumb = /** @type {HTMLElement} */ (bar.firstElementChild);
    term.attachCustomWheelEventHandler((event) => this.#onWheel(event));
    term.onWriteParsed(() => this.#refreshSoon());
    this.#installTouch(container);
    this.#installDrag();
  }

  /** True while the session's history is tmux's (not the page's own scrollback). */
  get active() {
    return this.#connection?.history === PROTOCOL.HISTORY_TMUX;
  }

  /** @param {TerminalConnection} connection */
  follow(connection) {
    this.#connection = connection;
    this.state = { in_mode: false, position: 0, history: 0, rows: this.#term.rows };
    this.#render();
    connection.addEventListener("history", (event) => {
      if (connection !== this.#connection) return;
      this.state = /** @type {CustomEvent} */ (event).detail;
      this.#render();
    });
    connection.addEventListener("statechange", () => {
      if (connection === this.#connection && connection.state === "connected") this.#send({ lines: 0 });
    });
  }

  /** @param {number} lines up (+) or down (-) */
  scrollLines(lines) {
    if (!this.active) {
      this.#term.scrollLines(-lines);
      return;
    }
    this.#pendingTo = -1;
    this.#pendingLines += lines;
    this.#schedule();
  }

  /** @param {number} pages up (+) or down (-) */
  scrollPages(pages) {
    this.scrollLines(pages * Math.max(1, this.#term.rows - 1));
  }

  /** Show the history `position` lines above the live screen (0: back to the live screen). */
  scrollTo(/** @type {number} */ position) {
    if (!this.active) return;
    this.#pendingLines = 0;
    this.#pendingTo = Math.max(0, Math.round(position));
    this.#schedule();
  }

  /** @param {WheelEvent} event */
  #onWheel(event) {
    if (!this.active || event.deltaY === 0 || event.ctrlKey) return !this.active;
    event.preventDefault();
    const now = performance.now();
    this.#spin = now - this.#lastWheelAt < SPIN_GAP_MS ? this.#spin + 1 : 0;
    this.#lastWheelAt = now;
    const speedup = Math.min(MAX_SPEEDUP, 1 + this.#spin / 4);
    let notches = event.deltaY / PIXELS_PER_NOTCH;
    if (event.deltaMode === WheelEvent.DOM_DELTA_LINE) notches = event.deltaY / LINES_PER_NOTCH;
    if (event.deltaMode === WheelEvent.DOM_DELTA_PAGE) notches = (event.deltaY * this.#term.rows) / LINES_PER_NOTCH;
    // Touchpads send many small deltas: keep the fractions so slow scrolling still moves.
    this.#fraction += -notches * LINES_PER_NOTCH * speedup;
    const whole = Math.trunc(this.#fraction);
    this.#fraction -= whole;
    if (whole !== 0) this.scrollLines(whole);
    return false; // xterm must not also turn the wheel into mouse reports for tmux
  }

  #schedule() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      if (this.#pendingTo >= 0) this.#send({ to: this.#pendingTo });
      else if (this.#pendingLines !== 0) this.#send({ lines: this.#pendingLines });
      this.#pendingLines = 0;
      this.#pendingTo = -1;
    });
  }

  /** @param {{lines?: number, to?: number}} request */
  #send(request) {
    if (!this.active) return;
    if (request.lines !== undefined) {
      const cap = PROTOCOL.MAX_SCROLL_LINES;
      request = { lines: Math.max(-cap, Math.min(cap, Math.round(request.lines))) };
    }
    this.#connection?.scroll(request);
  }

  /** The history grows with output: ask its length now and then, never per write. */
  #refreshSoon() {
    if (!this.active || this.#refreshTimer) return;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = 0;
      this.#send({ lines: 0 });
    }, REFRESH_MS);
  }

  #render() {
    const { history, position, rows } = this.state;
    const shown = this.active && history > 0;
    this.#bar.hidden = !shown;
    this.#bar.dataset.position = String(position);
    this.#bar.dataset.history = String(history);
    this.#bar.setAttribute("aria-valuemax", String(history));
    this.#bar.setAttribute("aria-valuenow", String(history - position));
    if (!shown) return;
    const track = this.#bar.clientHeight;
    const total = history + Math.max(1, rows);
    const thumb = Math.max(MIN_THUMB_PX, (track * Math.max(1, rows)) / total);
    const top = ((history - position) / history) * (track - thumb);
    this.#thumb.style.height = `${thumb}px`;
    this.#thumb.style.transform = `translateY(${Math.round(top)}px)`;
  }

  /** Dragging the thumb (or pressing the track) scrolls to that place in the history. */
  #installDrag() {
    /** @param {PointerEvent} event */
    const moveTo = (event) => {
      const rect = this.#bar.getBoundingClientRect();
      const thumb = this.#thumb.offsetHeight;
      const fraction = Math.min(1, Math.max(0, (event.clientY - rect.top - thumb / 2) / (rect.height - thumb)));
      this.scrollTo(this.state.history * (1 - fraction));
    };
    this.#bar.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      this.#bar.setPointerCapture(event.pointerId);
      moveTo(event);
      const move = (/** @type {PointerEvent} */ e) => moveTo(e);
      const up = () => {
        this.#bar.removeEventListener("pointermove", move);
        this.#bar.removeEventListener("pointerup", up);
        this.#term.focus();
      };
      this.#bar.addEventListener("pointermove", move);
      this.#bar.addEventListener("pointerup", up);
    });
  }

  /** A vertical swipe scrolls the history, a finger's travel of one row moving one line. */
  #installTouch(/** @type {HTMLElement} */ container) {
    let lastY = /** @type {number | null} */ (null);
    let carried = 0;
    container.addEventListener(
      "touchstart",
      (event) => {
        lastY = event.touches.length === 1 ? event.touches[0].clientY : null;
        carried = 0;
      },
      { passive: true },
    );
    container.addEventListener(
      "touchmove",
      (event) => {
        if (lastY === null || !this.active || event.touches.length !== 1) return;
        event.preventDefault(); // the page must not scroll or bounce instead
        const y = event.touches[0].clientY;
        const rowHeight = container.clientHeight / Math.max(1, this.#term.rows);
        carried += (y - lastY) / rowHeight; // finger down = content down = back in history
        lastY = y;
        const whole = Math.trunc(carried);
        carried -= whole;
        if (whole !== 0) this.scrollLines(whole);
      },
      { passive: false },
    );
    container.addEventListener("touchend", () => {
      lastY = null;
    });
  }
}
