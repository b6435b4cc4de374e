// @ts-check
/**
 * The low-memory warning. The container has a fixed amount of memory (6 GB on Databricks Apps by
 * default); when it runs out the kernel's OOM killer takes every shell at once. Below the gateway's
 * warning level (`memory.low` in the session list, README "Limits") this banner says how much is
 * left and what to do; the gateway itself refuses new sessions and agents under its floor.
 * Fed by the session list (main.js refreshes it every few seconds).
 */

/**
 * @typedef {{limit_mb: number, used_mb: number, available_mb: number, available_percent: number,
 *            low: boolean, source: string}} MemoryInfo
 */

export class MemoryWarning {
  #element;
  #text;

  /** @param {HTMLElement} element `#memory-banner` */
  constructor(element) {
    this.#element = element;
    this.#text = /** @type {HTMLElement} */ (element.querySelector(".memory-text"));
  }

  /** @param {MemoryInfo | null} memory null when the gateway cannot read it: nothing to say */
  show(memory) {
    const low = Boolean(memory?.low);
    this.#element.hidden = !low;
    if (!memory || !low) return;
    const text =
      `Memory is low: ${memory.available_mb} MiB of ${memory.limit_mb} MiB free ` +
      `(${memory.available_percent}%). Close agents or sessions you do not need: new ones may be ` +
      "refused, and if memory runs out every shell can be stopped at once.";
    if (this.#text.textContent !== text) this.#text.textContent = text;
  }
}
