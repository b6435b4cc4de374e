// @ts-check
/**
 * The two ways to carry the terminal protocol (PROTOCOL.md): a WebSocket, and an HTTP long-poll
 * fallback for proxies that block WebSockets. Both present the same small interface so
 * TerminalConnection never cares which one is live:
 *
 *   new XTransport(session, cols, rows, handlers); transport.start();
 *   transport.send(message)      - a client JSON message
 *   transport.sendBinary(string) - raw input bytes, one char per byte (xterm's onBinary)
 *   transport.flush()            - a promise settled once every message sent so far has reached the
 *                                  gateway (or the transport closed): a handover waits on it
 *   transport.close()            - stop for good; no handler fires afterwards
 *
 * handlers: onMessage(object), onOutput(Uint8Array), onClose({code, reason}).
 */

import { PROTOCOL } from "/js/protocol.js";
import { ApiError, request } from "./api.js";

/** What a transport reports when the network, not the gateway, ended it (as browsers do). */
export const CLOSE_ABNORMAL = 1006;

/** Long enough for the gateway's own wait plus a slow network, short enough to notice a dead one. */
const POLL_TIMEOUT_MS = (PROTOCOL.POLL_WAIT_SECONDS + 15) * 1000;


/**
 * @typedef {{onMessage(message: any): void, onOutput(data: Uint8Array): void,
 *            onClose(info: {code: number, reason: string}): void}} TransportHandlers
 */

/** @param {string} session */
function sessionPath(session) {
  return `/api/sessions/${encodeURIComponent(session)}`;
}

/** @param {string} binary one char per byte, as xterm's onBinary gives it */
function binaryStringToBytes(binary) {
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i) & 0xff;
  return bytes;
}

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** @param {string} base64 */
function base64ToBytes(base64) {
  return binaryStringToBytes(atob(base64));
}

export class WebSocketTransport {
  /** @type {"websocket"} */
  name = "websocket";
  #handlers;
  #url;
  /** @type {WebSocket | null} */
  #socket = null;
  #closed = false;

  /**
   * @param {string} session
   * @param {number} cols
   * @param {number} rows
   * @param {TransportHandlers} handlers
   */
  constructor(session, cols, rows, handlers) {
    this.#handlers = handlers;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.#url = `${scheme}//${location.host}${sessionPath(session)}/ws?cols=${cols}&rows=${rows}`;
  }

  start() {
    let socket;
    try {
      socket = new WebSocket(this.#url);
    } catch (error) {
      // Report asynchronously, like a failed handshake, so callers see one code path.
      setTimeout(() => this.#finish(CLOSE_ABNORMAL, String(error)));
      return;
    }
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (this.#closed) return;
      if (typeof event.data === "string") {
        const message = parseJson(event.data);
        if (message) this.#handlers.onMessage(message);
      } else {
        this.#handlers.onOutput(new Uint8Array(event.data));
      }
    };
    // A failed handshake fires `error` and then `close` (1006); reporting only the close is enough.
    socket.onclose = (event) => this.#finish(event.code, event.reason);
    this.#socket = socket;
  }

  /** @param {object} message */
  send(message) {
    if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(message));
  }

  /** @param {string} binary */
  sendBinary(binary) {
    if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send(binaryStringToBytes(binary));
  }

  /** Frames go out in order on one socket: nothing sent earlier can be overtaken. */
  flush() {
    return Promise.resolve();
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket?.close(1000, "client closed");
  }

  /** @param {number} code @param {string} reason */
  #finish(code, reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onClose({ code, reason });
  }
}

export class LongPollTransport {
  /** @type {"longpoll"} */
  name = "longpoll";
  #handlers;
  #base;
  #openUrl;
  /** @type {string | null} */
  #connUrl = null;
  /** @type {object[]} */
  #outbox = [];
  #sending = false;
  /** @type {(() => void)[]} resolved once the outbox is empty and no POST is in flight */
  #flushed = [];
  #closed = false;
  /** Aborts whatever request is in flight when the transport closes. */
  #abort = new AbortController();

  /**
   * @param {string} session
   * @param {number} cols
   * @param {number} rows
   * @param {TransportHandlers} handlers
   */
  constructor(session, cols, rows, handlers) {
    this.#handlers = handlers;
    this.#base = sessionPath(session);
    this.#openUrl = `${this.#base}/poll?cols=${cols}&rows=${rows}`;
  }

  start() {
    this.#open();
  }

  /** @param {object} message */
  send(message) {
    if (this.#closed) return;
    this.#outbox.push(message);
    this.#scheduleSend();
  }

  /**
   * The long-poll body is JSON, so raw bytes can only travel as an input string; the gateway
   * re-encodes it as UTF-8. onBinary is rare (legacy X10 mouse reports), so that is acceptable.
   * @param {string} binary
   */
  sendBinary(binary) {
    this.send({ type: PROTOCOL.INPUT, data: binary });
  }

  /** @returns {Promise<void>} */
  flush() {
    return new Promise((resolve) => {
      this.#flushed.push(resolve);
      this.#settleFlushed();
    });
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#release();
    this.#settleFlushed();
  }

  #settleFlushed() {
    if (!this.#closed && (this.#sending || this.#outbox.length)) return;
    for (const resolve of this.#flushed.splice(0)) resolve();
  }

  /**
   * Tell the gateway to stop this connection's attach client now rather than after its idle
   * timeout. keepalive lets the DELETE outlive a closing page.
   */
  #release() {
    if (this.#connUrl) {
      request(this.#connUrl, { method: "DELETE", keepalive: true }).catch(() => {});
    }
  }

  async #open() {
    const opened = await this.#fetchJson(this.#openUrl, { method: "POST" }, undefined, "open");
    if (!opened) return;
    const { conn } = opened;
    this.#connUrl = `${this.#base}/poll/${encodeURIComponent(conn)}`;
    this.#sendOutbox();
    this.#pollLoop();
  }

  /**
   * The parsed JSON answer, or null after reporting the failure (the transport is then closed).
   * @param {string} url
   * @param {RequestInit} init
   * @param {number | undefined} timeoutMs
   * @param {string} what the request, for the message when its answer is cut off
   * @returns {Promise<any>}
   */
  async #fetchJson(url, init, timeoutMs, what) {
    const response = await this.#fetch(url, init, timeoutMs);
    if (!response) return null;
    if (response instanceof ApiError) {
      this.#failHttp(response);
      return null;
    }
    try {
      return await response.json();
    } catch {
      this.#fail(CLOSE_ABNORMAL, `the ${what} answer was cut off`);
      return null;
    }
  }

  async #pollLoop() {
    const url = this.#connUrl;
    if (url === null) return;
    while (!this.#closed) {
      const answer = await this.#fetchJson(url, {}, POLL_TIMEOUT_MS, "poll");
      if (!answer) return;
      const { messages } = /** @type {{messages: {type: string, data: string, code: number, reason: string}[]}} */ (answer);
      if (messages.some((message) => message.type === PROTOCOL.CLOSED)) {
        this.#connUrl = null; // the gateway already dropped it: nothing to release
      }
      for (const message of messages) {
        if (this.#closed) return;
        if (message.type === PROTOCOL.OUTPUT) {
          this.#handlers.onOutput(base64ToBytes(message.data));
        } else if (message.type === PROTOCOL.CLOSED) {
          this.#fail(message.code, message.reason);
          return;
        } else {
          this.#handlers.onMessage(message);
        }
      }
    }
  }

  #scheduleSend() {
    if (!this.#sending && this.#connUrl) void this.#sendOutbox();
  }

  /**
   * A message goes out at once when no POST is in flight; what is typed meanwhile travels in one
   * POST when it returns (one in flight at a time also keeps keystrokes in order). A fixed delay
   * to gather keys would add itself to every echo.
   */
  async #sendOutbox() {
    const url = this.#connUrl;
    // No url: the gateway closed the connection (`closed`) while the last POST was out.
    if (this.#closed || this.#sending || this.#outbox.length === 0 || url === null) {
      this.#settleFlushed();
      return;
    }
    const batch = this.#outbox.splice(0);
    this.#sending = true;
    const response = await this.#fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(batch),
    });
    this.#sending = false;
    if (!response) return;
    if (response instanceof ApiError && response.status === 400) {
      // The good messages were applied; the gateway names the bad ones.
      this.#handlers.onMessage({ type: PROTOCOL.ERROR, message: response.message });
    } else if (response instanceof ApiError) {
      this.#failHttp(response);
      return;
    }
    void this.#sendOutbox();
  }

  /**
   * api.request with a deadline, cut short when the transport closes; a network failure or
   * timeout closes the transport.
   * @param {string} url
   * @param {RequestInit} init
   * @param {number} [timeoutMs]
   * @returns {Promise<Response | ApiError | null>} an HTTP error answer as its ApiError; null once
   *   the transport is closed
   */
  async #fetch(url, init, timeoutMs = 20_000) {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const stop = () => timeout.abort();
    this.#abort.signal.addEventListener("abort", stop);
    try {
      const response = await request(url, { ...init, signal: timeout.signal });
      return this.#closed ? null : response;
    } catch (error) {
      if (this.#closed) return null;
      if (error instanceof ApiError && error.status !== 0) return error;
      this.#fail(CLOSE_ABNORMAL, "the network request failed");
      return null;
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", stop);
    }
  }

  /**
   * Map HTTP answers onto the WebSocket close codes, so both transports end the same way.
   * A 404 on the open means no session; on a poll it means the connection expired.
   * @param {ApiError} error
   */
  #failHttp(error) {
    const duringOpen = this.#connUrl === null;
    if (error.status === 404) this.#connUrl = null; // gone already: nothing to release
    /** @type {Record<number, number>} */
    const codes = {
      400: PROTOCOL.CLOSE_BAD_REQUEST,
      401: PROTOCOL.CLOSE_UNAUTHORIZED,
      403: PROTOCOL.CLOSE_FORBIDDEN,
      404: duringOpen ? PROTOCOL.CLOSE_NO_SESSION : CLOSE_ABNORMAL,
      429: PROTOCOL.CLOSE_TOO_MANY,
    };
    this.#fail(codes[error.status] ?? CLOSE_ABNORMAL, error.message);
  }

  /** @param {number} code @param {string} reason */
  #fail(code, reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#release();
    this.#settleFlushed();
    this.#handlers.onClose({ code, reason });
  }
}
