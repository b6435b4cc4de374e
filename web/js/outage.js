// @ts-check
/**
 * A disconnection you cannot miss: while the terminal is not connected it is dimmed, and an overlay
 * says why (offline, or reconnecting in N s), how many typed bytes wait to be sent, and offers
 * "Reconnect now". Only from the second connection attempt on: the first connect of a page load
 * is normally quick and must not flash an overlay.
 */

import { ConnectionState, OFFLINE_INPUT_LIMIT } from "./connection.js";

/** @typedef {import("./connection.js").TerminalConnection} TerminalConnection */

/** @type {Set<string>} */
const DOWN = new Set([ConnectionState.RECONNECTING, ConnectionState.OFFLINE]);

export class OutageOverlay {
  #area;
  #box;
  #text;
  #pending;
  #countdown = 0;
  /** @type {TerminalConnection | null} */
  #connection = null;

  /**
   * @param {HTMLElement} area the terminal area, dimmed through its `data-outage` attribute
   * @param {HTMLElement} box the overlay, with .outage-text, .outage-pending and .outage-reconnect
   */
  constructor(area, box) {
    this.#area = area;
    this.#box = box;
    this.#text = /** @type {HTMLElement} */ (box.querySelector(".outage-text"));
    this.#pending = /** @type {HTMLElement} */ (box.querySelector(".outage-pending"));
    const button = /** @type {HTMLButtonElement} */ (box.querySelector(".outage-reconnect"));
    // The terminal keeps the keyboard: typing goes on into the buffer while the overlay shows.
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => this.#connection?.reconnectNow());
  }

  /** @param {TerminalConnection} connection */
  follow(connection) {
    this.#connection = connection;
    connection.addEventListener("pendinginput", () => {
      if (connection === this.#connection) this.#renderPending();
    });
    this.show(connection);
  }

  /** @param {TerminalConnection} connection */
  show(connection) {
    if (connection !== this.#connection) return;
    clearInterval(this.#countdown);
    this.#countdown = 0;
    const { state } = connection;
    // Once down, the overlay stays through the following attempt ("connecting") until connected.
    const down = DOWN.has(state) || (state === ConnectionState.CONNECTING && !this.#box.hidden);
    this.#box.hidden = !down;
    if (down) this.#area.dataset.outage = state;
    else delete this.#area.dataset.outage;
    if (!down) return;
    if (state === ConnectionState.OFFLINE) {
      this.#text.textContent = "You are offline. The terminal reconnects when the network is back.";
    } else if (state === ConnectionState.CONNECTING) {
      this.#text.textContent = "Disconnected from the terminal. Reconnecting…";
    } else {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
        this.#text.textContent =
          seconds > 0 ? `Disconnected from the terminal. Retrying in ${seconds} s.` : "Disconnected. Reconnecting…";
      };
      tick();
      this.#countdown = setInterval(tick, 250);
    }
    this.#renderPending();
  }

  #renderPending() {
    const bytes = this.#connection?.pendingInputBytes ?? 0;
    this.#pending.textContent =
      bytes > 0
        ? `${bytes} typed byte${bytes === 1 ? "" : "s"} will be sent on reconnect (up to ${OFFLINE_INPUT_LIMIT / 1024} KiB).`
        : "What you type now is sent when the terminal is back.";
  }
}
