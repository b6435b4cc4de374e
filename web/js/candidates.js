// @ts-check
/**
 * WebSocket attempts made beside a live long-poll (PROTOCOL.md, "Long-poll fallback"): one at a
 * time, after a backoff, each given PROBE_TIMEOUT_MS to reach the gateway's `ready`. Until then
 * every event it delivers is recorded, not shown, so TerminalConnection can switch the terminal to
 * it (make before break) and play the record as if it had been live all along.
 */

import { PROTOCOL } from "/js/protocol.js";

/** The first retry comes after about this long (with jitter), doubling up to PROBE_CAP_MS. */
const PROBE_START_MS = 1_000;
const PROBE_CAP_MS = 30_000;
/** A WebSocket that has not reached `ready` by then is closed (a swallowed upgrade never will). */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * @typedef {import("./connection.js").Transport} Transport
 * @typedef {import("./connection.js").TransportEvent} TransportEvent
 * @typedef {{transport: Transport, events: TransportEvent[], ready: boolean,
 *            size: {cols: number, rows: number}}} Candidate
 */

export class CandidateTrials {
  /** @type {Candidate | null} */
  current = null;
  #open;
  #onReady;
  #attempt = 0;
  #nextTimer = 0;
  #timeoutTimer = 0;

  /**
   * @param {{open: () => {transport: Transport, size: {cols: number, rows: number}} | null,
   *          onReady: (candidate: Candidate) => void}} hooks
   *   open starts a WebSocket whose events the caller routes to record() (null: not now);
   *   onReady gets the candidate once it has replayed the screen.
   */
  constructor({ open, onReady }) {
    this.#open = open;
    this.#onReady = onReady;
  }

  /** @param {Transport} transport */
  owns(transport) {
    return this.current?.transport === transport;
  }

  /** Try again after the backoff, unless a trial is pending or running. */
  schedule() {
    if (this.current || this.#nextTimer) return;
    const ceiling = Math.min(PROBE_CAP_MS, PROBE_START_MS * 2 ** Math.min(this.#attempt, 16));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.#attempt += 1;
    this.#nextTimer = setTimeout(() => {
      this.#nextTimer = 0;
      const opened = this.#open();
      if (opened) this.adopt(opened.transport, opened.size);
    }, delay);
  }

  /**
   * Watch a started transport as the candidate (also a live WebSocket whose hello is overdue).
   * @param {Transport} transport @param {{cols: number, rows: number}} size its opening size
   */
  adopt(transport, size) {
    this.drop();
    this.current = { transport, events: [], ready: false, size };
    this.#timeoutTimer = setTimeout(() => this.#failed(transport), PROBE_TIMEOUT_MS);
  }

  /** @param {Transport} transport @param {TransportEvent} event */
  record(transport, event) {
    const candidate = this.current;
    if (candidate?.transport !== transport) return;
    const [kind, value] = event;
    if (kind === "close") {
      this.#failed(transport);
      return;
    }
    candidate.events.push(event);
    if (kind === "message" && value.type === PROTOCOL.READY && !candidate.ready) {
      candidate.ready = true;
      clearTimeout(this.#timeoutTimer);
      this.#onReady(candidate);
    }
  }

  /** The candidate went live: the next trial, if ever needed, starts from the shortest backoff. */
  taken() {
    clearTimeout(this.#timeoutTimer);
    this.current = null;
    this.#attempt = 0;
  }

  /** Close the candidate and cancel any trial to come. */
  drop() {
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#nextTimer);
    this.#nextTimer = 0;
    this.current?.transport.close();
    this.current = null;
  }

  /** @param {Transport} transport */
  #failed(transport) {
    if (this.current?.transport !== transport || this.current.ready) return;
    this.drop();
    this.schedule();
  }
}
