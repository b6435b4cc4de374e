// @ts-check
/**
 * A status poll loop: one request at a time, the next one when the last answered (after the delay
 * it asked for), doubling back-off while requests fail, and a fresh look when the page is seen again.
 * `poll()` asks for an answer now; during a request it asks for another right after.
 */
export class Poller {
  #task;
  #backoff;
  #pauseWhenHidden;
  #timer = 0;
  #inFlight = false;
  /** Asked for while a request was under way: look again as soon as it answers. */
  #again = false;
  #failures = 0;

  /**
   * @param {() => Promise<number>} task one poll; resolves to the delay (ms) before the next
   * @param {{backoff(failures: number): number, pauseWhenHidden?: boolean}} options
   *   backoff: the delay after `failures` failed polls in a row (the task threw);
   *   pauseWhenHidden: no polling at all while the page is hidden (else the task's own delays hold)
   */
  constructor(task, { backoff, pauseWhenHidden = false }) {
    this.#task = task;
    this.#backoff = backoff;
    this.#pauseWhenHidden = pauseWhenHidden;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.poll();
      else if (this.#pauseWhenHidden) this.#stop();
    });
  }

  /** How many polls in a row have failed (0 after a success). */
  get failures() {
    return this.#failures;
  }

  async poll() {
    this.#stop();
    if (this.#pauseWhenHidden && document.visibilityState !== "visible") return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = true;
    this.#again = false;
    let delay;
    try {
      delay = await this.#task();
      this.#failures = 0;
    } catch {
      // The task shows what it can; the connection indicator says when the gateway is unreachable.
      this.#failures += 1;
      delay = this.#backoff(this.#failures);
    } finally {
      this.#inFlight = false;
    }
    if (this.#pauseWhenHidden && document.visibilityState !== "visible") return;
    if (!this.#timer) this.#timer = setTimeout(() => this.poll(), this.#again ? 0 : delay);
    this.#again = false;
  }

  #stop() {
    clearTimeout(this.#timer);
    this.#timer = 0;
  }
}
