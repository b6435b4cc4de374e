// @ts-check
/**
 * The degraded-mode banner. Without tmux the gateway runs each shell on its own PTY: everything
 * works, but shells end when the web process restarts. The banner says why tmux is missing, what
 * is lost and how to fix it, and offers the setup step "tmux" again; it goes once the gateway sees
 * tmux up. Fed by the session list (main.js refreshes it every few seconds).
 */

import { retrySetup } from "./setupstatus.js";

export class DegradedBanner {
  #element;
  #text;
  #retry;
  #toast;

  /**
   * @param {HTMLElement} element `#degraded-banner`
   * @param {import("./status.js").Toast} toast for the retry's outcome
   */
  constructor(element, toast) {
    this.#element = element;
    this.#text = /** @type {HTMLElement} */ (element.querySelector(".degraded-text"));
    this.#retry = /** @type {HTMLButtonElement} */ (element.querySelector(".degraded-retry"));
    this.#toast = toast;
    this.#retry.addEventListener("click", () => this.#retryInstall());
  }

  /** @param {{terminal: string, terminalReason: string}} list */
  show({ terminal, terminalReason }) {
    const degraded = terminal === "degraded";
    this.#element.hidden = !degraded;
    this.#element.dataset.terminal = terminal;
    if (!degraded) return;
    const text = `Terminal without tmux: shells end when the web process restarts. Why: ${terminalReason}.`;
    if (this.#text.textContent !== text) this.#text.textContent = text;
  }

  async #retryInstall() {
    this.#retry.disabled = true;
    try {
      await retrySetup("tmux");
      this.#toast.show("Installing tmux: the setup panel shows how it goes");
    } catch (error) {
      this.#toast.show(`Could not retry tmux: ${/** @type {Error} */ (error).message}`);
    } finally {
      this.#retry.disabled = false;
    }
  }
}
