// @ts-check
/**
 * What the user sees of the connection: the indicator in the top bar and short-lived toasts.
 */

import { ConnectionState } from "./connection.js";
import { find } from "./dom.js";

const TRANSPORT_LABELS = { websocket: "WebSocket", longpoll: "long-poll" };
const TOAST_MS = 5_000;

/**
 * Renders a TerminalConnection's state into `#connection`. The state and transport also go into
 * `data-state` / `data-transport`, which the CSS colours the dot from and tests read.
 */
export class ConnectionIndicator {
  #element;
  #label;
  #countdown = 0;

  /** @param {HTMLElement} element */
  constructor(element) {
    this.#element = element;
    this.#label = find(element, ".label");
  }

  /** @param {import("./connection.js").TerminalConnection} connection */
  show(connection) {
    clearInterval(this.#countdown);
    this.#countdown = 0;
    const { state, transport } = connection;
    this.#element.dataset.state = state;
    this.#element.dataset.transport = transport;
    const via = TRANSPORT_LABELS[transport];
    this.#element.title = `${connection.session}: ${state} (${via})`;
    switch (state) {
      case ConnectionState.CONNECTING:
        this.#label.textContent = "connecting…";
        break;
      case ConnectionState.CONNECTED:
        this.#label.textContent = `connected · ${via}`;
        break;
      case ConnectionState.RECONNECTING: {
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
          this.#label.textContent = seconds > 0 ? `reconnecting in ${seconds}s` : "reconnecting…";
        };
        tick();
        this.#countdown = setInterval(tick, 250);
        break;
      }
      case ConnectionState.ENDED:
        this.#label.textContent = "session ended";
        break;
      case ConnectionState.MISSING:
        this.#label.textContent = "no such session";
        break;
      case ConnectionState.OFFLINE:
        this.#label.textContent = "offline";
        break;
    }
  }
}

/** One line of text over the terminal that fades by itself; a newer message replaces it. */
export class Toast {
  #element;
  #timer = 0;

  /** @param {HTMLElement} element */
  constructor(element) {
    this.#element = element;
    element.addEventListener("click", () => this.hide());
  }

  /**
   * @param {string} message
   * @param {{label: string, action: () => void}} [button] one action offered beside the message
   */
  show(message, button) {
    clearTimeout(this.#timer);
    this.#element.textContent = message;
    if (button) {
      const control = document.createElement("button");
      control.type = "button";
      control.textContent = button.label;
      control.addEventListener("click", () => button.action());
      this.#element.append(" ", control);
    }
    this.#element.hidden = false;
    this.#timer = setTimeout(() => this.hide(), TOAST_MS);
  }

  hide() {
    clearTimeout(this.#timer);
    this.#element.hidden = true;
  }
}
