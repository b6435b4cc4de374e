// @ts-check
/**
 * The server's clock, carried forward between answers by the page's monotonic clock, so a browser
 * with a wrong wall clock still counts elapsed and "ago" times right. Until the first `sync` it is
 * the browser's own clock.
 */
export class ServerClock {
  #offsetMs = Date.now() - performance.now();

  /** @param {number} serverNow seconds since the epoch, from the server */
  sync(serverNow) {
    this.#offsetMs = serverNow * 1000 - performance.now();
  }

  /** @returns {number} seconds since the epoch, on the server's clock */
  now() {
    return (performance.now() + this.#offsetMs) / 1000;
  }
}
