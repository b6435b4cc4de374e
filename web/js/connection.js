/**
 * TerminalConnection: keeps one xterm.js terminal attached to one tmux session through whatever
 * transport gets through, reconnecting until the session ends. Protocol: PROTOCOL.md.
 */

import { PROTOCOL } from "/js/protocol.js";
import { CLOSE_ABNORMAL, LongPollTransport, WebSocketTransport } from "./transports.js";

/** The values of `connection.state` (and of `data-state` on the indicator). */
export const ConnectionState = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  ENDED: "ended", // the shell exited or the session was killed: never reconnect
  MISSING: "missing", // no such session: reconnecting would only loop
  OFFLINE: "offline", // the browser says there is no network; the `online` event resumes
});

const BACKOFF_START_MS = 250;
const BACKOFF_CAP_MS = 10_000;
/** A connection that lived this long was a real one, so the next outage starts the backoff over. */
const STABLE_CONNECTION_MS = 5_000;
/** A proxy that swallows the upgrade can leave a WebSocket "connecting" forever. */
const HELLO_TIMEOUT_MS = 10_000;
/** Two handshakes in a row failing before `hello` means something in between blocks WebSockets. */
const WEBSOCKET_FAILURES_BEFORE_FALLBACK = 2;
const RESIZE_DEBOUNCE_MS = 50;
/** After sleep or a network change a socket can look open yet be dead; a ping unmasks it. */
const LIVENESS_PROBE_MS = 5_000;

/**
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {WebSocketTransport | LongPollTransport} Transport
 */

export class TerminalConnection extends EventTarget {
  /** @type {string} one of ConnectionState */
  state = ConnectionState.CONNECTING;
  /** @type {"websocket" | "longpoll"} the transport in use or being tried */
  transport = "websocket";
  /** @type {string} the tmux session this connection attaches to */
  session;
  /** While reconnecting: when the next attempt starts (ms since the epoch). */
  retryAt = 0;
  /**
   * True from `hello` until the replay has been rendered: input must not reach the shell.
   * `state` turns CONNECTED when this turns false.
   */
  replaying = false;

  #term;
  #transformInput;
  /** @type {Transport | null} */
  #live = null;
  #longPollOnly;
  #websocketFailures = 0;
  #attempt = 0;
  #helloSeen = false;
  #connectedAt = 0;
  #renderedSinceAck = 0;
  /** @type {{cols: number, rows: number}} */
  #sentSize = { cols: 0, rows: 0 };
  #stopped = false;
  /** @type {{dispose(): void}[]} */
  #subscriptions = [];
  #timers = { retry: 0, hello: 0, resize: 0, probe: 0 };

  /**
   * @param {Terminal} term
   * @param {string} session
   * @param {{longPollOnly?: boolean, transformInput?: (data: string) => string}} [options]
   *   longPollOnly skips WebSocket attempts (forced by `?transport=poll`, or learned by an earlier
   *   connection); transformInput lets the touch key bar's sticky Ctrl rewrite typed keys.
   */
  constructor(term, session, { longPollOnly = false, transformInput = (data) => data } = {}) {
    super();
    this.session = session;
    this.#term = term;
    this.#transformInput = transformInput;
    this.#longPollOnly = longPollOnly || typeof window.WebSocket === "undefined";
    this.transport = this.#longPollOnly ? "longpoll" : "websocket";
  }

  /**
   * True once long-poll is known to be the way through (forced, or WebSocket failed and long-poll
   * worked), so the next connection in this page can skip the WebSocket attempts.
   */
  get longPollOnly() {
    return this.#longPollOnly;
  }

  start() {
    const term = this.#term;
    this.#subscriptions.push(
      term.onData((data) => this.#sendInput(data)),
      term.onBinary((data) => {
        if (this.#inputOpen()) this.#live.sendBinary(data);
      }),
      term.onResize(() => {
        clearTimeout(this.#timers.resize);
        this.#timers.resize = setTimeout(() => this.#sendSize(), RESIZE_DEBOUNCE_MS);
      }),
    );
    window.addEventListener("online", this.#wake);
    document.addEventListener("visibilitychange", this.#wake);
    this.#connect();
  }

  /** Detach for good (switching sessions, leaving the page); the session itself lives on. */
  close() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearTimers();
    for (const subscription of this.#subscriptions) subscription.dispose();
    this.#subscriptions = [];
    window.removeEventListener("online", this.#wake);
    document.removeEventListener("visibilitychange", this.#wake);
    this.#live?.close();
    this.#live = null;
  }

  #connect() {
    this.#clearTimers();
    const useLongPoll =
      this.#longPollOnly || this.#websocketFailures >= WEBSOCKET_FAILURES_BEFORE_FALLBACK;
    const Transport = useLongPoll ? LongPollTransport : WebSocketTransport;
    const { cols, rows } = this.#term;
    const transport = new Transport(this.session, cols, rows, {
      onMessage: (message) => this.#onMessage(transport, message),
      onOutput: (data) => this.#onOutput(transport, data),
      onClose: (info) => this.#onClose(transport, info),
    });
    this.#live = transport;
    this.#helloSeen = false;
    this.#renderedSinceAck = 0;
    this.#sentSize = { cols, rows };
    this.transport = transport.name;
    this.#setState(ConnectionState.CONNECTING);
    this.#timers.hello = setTimeout(() => this.#abandon(transport), HELLO_TIMEOUT_MS);
    transport.start();
  }

  /** @param {Transport} transport @param {any} message */
  #onMessage(transport, message) {
    if (transport !== this.#live) return;
    this.#stillAlive();
    switch (message.type) {
      case PROTOCOL.HELLO:
        this.#onHello(transport);
        break;
      case PROTOCOL.READY:
        // Leave replay mode only once xterm has parsed every replayed byte: a write callback
        // runs after all earlier writes, so nothing in the replay can answer into the shell.
        // Only then is the terminal usable, so only then is it "connected".
        this.#term.write("", () => {
          if (transport !== this.#live) return;
          this.replaying = false;
          this.#setState(ConnectionState.CONNECTED);
        });
        break;
      case PROTOCOL.EXIT:
        this.#finish(ConnectionState.ENDED);
        break;
      case PROTOCOL.ERROR:
        this.#notify(message.message);
        break;
      case PROTOCOL.PONG:
        break; // #stillAlive() above is all a pong is for
    }
  }

  /** @param {Transport} transport */
  #onHello(transport) {
    clearTimeout(this.#timers.hello);
    this.#helloSeen = true;
    this.#connectedAt = Date.now();
    this.#websocketFailures = 0;
    if (transport.name === "longpoll") this.#longPollOnly = true; // it got through; WebSocket did not
    this.replaying = true;
    this.#term.reset();
    this.#sendSize(); // the window may have changed while the connection was being set up
  }

  /** @param {Transport} transport @param {Uint8Array} data */
  #onOutput(transport, data) {
    if (transport !== this.#live) return;
    this.#stillAlive();
    const size = data.length;
    // Ack from the write callback, i.e. after rendering, so the gateway's flow control tracks
    // what this browser has actually drawn rather than what the network delivered.
    this.#term.write(data, () => {
      if (transport !== this.#live) return;
      this.#renderedSinceAck += size;
      if (this.#renderedSinceAck >= PROTOCOL.ACK_EVERY) {
        transport.send({ type: PROTOCOL.ACK, bytes: this.#renderedSinceAck });
        this.#renderedSinceAck = 0;
      }
    });
  }

  /** @param {Transport} transport @param {{code: number, reason: string}} info */
  #onClose(transport, { code, reason }) {
    if (transport !== this.#live) return;
    this.#live = null;
    this.#clearTimers();
    // A normal close ends the session only after a hello; before one, something in between
    // (a proxy) closed the socket, which is a failed attempt like any other.
    if (code === PROTOCOL.CLOSE_NORMAL && this.#helloSeen) {
      this.#finish(ConnectionState.ENDED);
      return;
    }
    if (code === PROTOCOL.CLOSE_NO_SESSION) {
      this.#finish(ConnectionState.MISSING);
      return;
    }
    if (code === PROTOCOL.CLOSE_UNAUTHORIZED || code === PROTOCOL.CLOSE_FORBIDDEN) {
      this.#notify(`${reason} — reopen the app's start URL to sign in again`);
    }
    if (this.#helloSeen && Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) {
      this.#attempt = 0;
    }
    if (!this.#helloSeen && !this.#longPollOnly) {
      if (transport.name === "websocket") {
        void this.#judgeWebSocketFailure();
        return;
      }
      // Long-poll failed too, so the gateway itself is unreachable rather than WebSockets
      // blocked: go back to trying WebSocket first.
      this.#websocketFailures = 0;
    }
    this.#scheduleReconnect();
  }

  /**
   * A WebSocket that fails while the gateway answers plain HTTP is blocked on the way (a proxy);
   * one that fails while nothing answers met a gateway restart, and WebSocket is tried again:
   * otherwise a restart could leave the page on long-poll for good.
   */
  async #judgeWebSocketFailure() {
    const gatewayUp = await fetch("/health", { cache: "no-store" }).then(
      (response) => response.ok,
      () => false,
    );
    if (this.#stopped || this.#live) return; // closed, or a wake-up connected meanwhile
    this.#websocketFailures = gatewayUp ? this.#websocketFailures + 1 : 0;
    if (this.#websocketFailures === WEBSOCKET_FAILURES_BEFORE_FALLBACK) {
      this.#connect();
    } else {
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect() {
    if (navigator.onLine === false) {
      this.#setState(ConnectionState.OFFLINE);
      return;
    }
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.min(this.#attempt, 16));
    // Jitter spreads the reconnects of many tabs after a gateway restart.
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.#attempt += 1;
    this.retryAt = Date.now() + delay;
    this.#timers.retry = setTimeout(() => this.#connect(), delay);
    this.#setState(ConnectionState.RECONNECTING);
  }

  /** `online` and "tab visible again" are the moments a waiting reconnect should not wait. */
  #wake = () => {
    if (this.#stopped || document.visibilityState !== "visible") return;
    if (this.state === ConnectionState.RECONNECTING || this.state === ConnectionState.OFFLINE) {
      this.#attempt = 0;
      this.#connect();
    } else if (this.state === ConnectionState.CONNECTED && !this.#timers.probe) {
      const transport = this.#live;
      transport.send({ type: PROTOCOL.PING });
      this.#timers.probe = setTimeout(() => this.#abandon(transport), LIVENESS_PROBE_MS);
    }
  };

  #stillAlive() {
    clearTimeout(this.#timers.probe);
    this.#timers.probe = 0;
  }

  /**
   * Give up on a transport that stopped answering, and go through the normal close path.
   * @param {Transport} transport
   */
  #abandon(transport) {
    if (transport !== this.#live) return;
    transport.close();
    this.#onClose(transport, { code: CLOSE_ABNORMAL, reason: "no answer from the gateway" });
  }

  /** @param {string} data */
  #sendInput(data) {
    if (this.#inputOpen()) {
      this.#live.send({ type: PROTOCOL.INPUT, data: this.#transformInput(data) });
    }
  }

  #inputOpen() {
    return this.#live !== null && this.#helloSeen && !this.replaying;
  }

  #sendSize() {
    const { cols, rows } = this.#term;
    if (!this.#live || !this.#helloSeen) return;
    if (cols === this.#sentSize.cols && rows === this.#sentSize.rows) return;
    this.#live.send({ type: PROTOCOL.RESIZE, cols, rows });
    this.#sentSize = { cols, rows };
  }

  /** @param {string} state ENDED or MISSING: states no reconnect can fix */
  #finish(state) {
    this.#clearTimers();
    this.#live?.close();
    this.#live = null;
    this.replaying = false;
    this.#setState(state);
  }

  #clearTimers() {
    for (const name of Object.keys(this.#timers)) {
      clearTimeout(this.#timers[name]);
      this.#timers[name] = 0;
    }
  }

  /** @param {string} state */
  #setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, transport: this.transport } }));
  }

  /** @param {string} message */
  #notify(message) {
    this.dispatchEvent(new CustomEvent("notice", { detail: { message } }));
  }
}
