// @ts-check
/**
 * TerminalConnection: keeps one xterm.js terminal attached to one tmux session through whatever
 * transport gets through, reconnecting until the session ends. Protocol: PROTOCOL.md.
 *
 * A WebSocket that has not said `hello` within WEBSOCKET_HELLO_DEADLINE_MS (a proxy swallowing the
 * upgrade) hands the terminal to long-poll at once; WebSockets are then tried in the background
 * (the "candidate", candidates.js), and the first that reaches `ready` takes over: see #handOver.
 */

import { PROTOCOL } from "/js/protocol.js";
import { request } from "./api.js";
import { CandidateTrials } from "./candidates.js";
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
/**
 * Refused by a connection limit (PROTOCOL.CLOSE_TOO_MANY): retry no sooner than this attempt's
 * backoff (4-8 s), since a place frees only when a tab closes.
 */
const TOO_MANY_ATTEMPT = 5;
/** A connection that lived this long was a real one, so the next outage starts the backoff over. */
const STABLE_CONNECTION_MS = 5_000;
/** A transport that has not said `hello` by then is given up (long-poll; WebSocket: see below). */
const HELLO_TIMEOUT_MS = 10_000;
/**
 * A proxy that swallows the upgrade leaves a WebSocket "connecting" forever; past this, long-poll
 * starts beside it, so the terminal works within ~2 s of page load. A working gateway says hello
 * within a few round trips, and a slower one still gets its socket back (it stays on as candidate).
 */
const WEBSOCKET_HELLO_DEADLINE_MS = 1_000;
/**
 * After a handover the old transport is closed only this much later: a keystroke it delivered just
 * before may still sit unread in its PTY, and closing the PTY would drop it.
 */
const RETIRE_GRACE_MS = 1_000;
/** Two handshakes in a row failing before `hello` means something in between blocks WebSockets. */
const WEBSOCKET_FAILURES_BEFORE_FALLBACK = 2;
const RESIZE_DEBOUNCE_MS = 50;
/** After sleep or a network change a socket can look open yet be dead; a ping unmasks it. */
const LIVENESS_PROBE_MS = 5_000;
/**
 * Keys typed while disconnected wait, up to this many bytes, and are sent once the terminal is back;
 * beyond it they are refused with a notice. Small on purpose: a long blind burst is rarely wanted.
 */
export const OFFLINE_INPUT_LIMIT = 4 * 1024;
/**
 * What xterm.js sends on its own to answer a program's query: device attributes (DA1 `ESC[?…c`,
 * DA2 `ESC[>…c`), status and cursor position reports (`ESC[…n`, `ESC[…R`), mode reports
 * (`ESC[…$y`), window reports (`ESC[…t`), DCS (XTVERSION, DECRQSS) and OSC (colours) replies.
 * A plain cursor position report looks like Ctrl+F3 (`ESC[1;5R`): see #sendReport for why that
 * is harmless.
 */
const TERMINAL_REPORT = /^(?:\x1b\[[?>]?[\d;]*(?:c|n|R|\$y|t)|\x1bP[\s\S]*\x1b\\|\x1b\][\s\S]*(?:\x07|\x1b\\))$/;
/** Scrollback xterm.js keeps only where the gateway has no tmux history (degraded shells). */
const LOCAL_SCROLLBACK = 10_000;

/** @typedef {"retry" | "hello" | "resize" | "probe"} TimerName */
/**
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {WebSocketTransport | LongPollTransport} Transport
 * @typedef {["message", any] | ["output", Uint8Array] | ["close", {code: number, reason: string}]} TransportEvent
 * @typedef {import("./candidates.js").Candidate} Candidate
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
  /** Where the session's history lives, from `hello`: PROTOCOL.HISTORY_TMUX or HISTORY_LOCAL. */
  /** @type {typeof PROTOCOL.HISTORY_TMUX | typeof PROTOCOL.HISTORY_LOCAL} */
  history = PROTOCOL.HISTORY_TMUX;

  #term;
  #transformInput;
  /** @type {Transport | null} the transport the terminal shows and types into */
  #live = null;
  /** WebSockets opened beside a live long-poll, each recorded until `ready` */
  #candidates = new CandidateTrials({
    open: () => this.#openCandidate(),
    onReady: (candidate) => void this.#handOver(candidate),
  });
  /** @type {Set<Transport>} replaced transports, closed after RETIRE_GRACE_MS */
  #retiring = new Set();
  /** While a handover waits for the old transport to deliver, typed input waits here. */
  #handingOver = false;
  /** @type {{binary: boolean, data: string}[]} */
  #heldInput = [];
  /** @type {{binary: boolean, data: string}[]} typed while disconnected; sent once connected */
  #offlineInput = [];
  #offlineBytes = 0;
  #longPollOnly;
  /** WebSocket was blocked and long-poll got through: start on long-poll, probe WebSocket beside. */
  #preferLongPoll;
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
  /** @type {Record<TimerName, number>} */
  #timers = { retry: 0, hello: 0, resize: 0, probe: 0 };
  /**
   * @type {Transport[]} whose output each pending `term.write` holds, oldest first: while xterm.js
   * parses a write, its transport is the head, so an answer to a query knows who asked.
   */
  #writesFrom = [];

  /**
   * @param {Terminal} term
   * @param {string} session
   * @param {{longPollOnly?: boolean, startOnLongPoll?: boolean,
   *          transformInput?: (data: string) => string}} [options]
   *   longPollOnly never tries WebSocket (`?transport=poll`); startOnLongPoll starts on long-poll
   *   and tries WebSocket beside it (learned by an earlier connection in this tab); transformInput
   *   lets the touch key bar's sticky Ctrl rewrite typed keys.
   */
  constructor(
    term,
    session,
    { longPollOnly = false, startOnLongPoll = false, transformInput = (data) => data } = {},
  ) {
    super();
    this.session = session;
    this.#term = term;
    this.#transformInput = transformInput;
    this.#longPollOnly = longPollOnly || typeof window.WebSocket === "undefined";
    this.#preferLongPoll = startOnLongPoll;
    this.transport = this.#longPollOnly || startOnLongPoll ? "longpoll" : "websocket";
  }

  /**
   * True while long-poll is the way through because WebSocket was not (not when it is forced), so
   * the next connection in this tab can start on long-poll instead of waiting out a WebSocket.
   */
  get prefersLongPoll() {
    return this.#preferLongPoll && !this.#longPollOnly;
  }

  start() {
    const term = this.#term;
    this.#subscriptions.push(
      term.onData((data) => this.#sendInput(data)),
      term.onBinary((data) => this.#sendBinary(data)),
      term.onResize(() => {
        clearTimeout(this.#timers.resize);
        this.#timers.resize = setTimeout(() => this.#sendSize(), RESIZE_DEBOUNCE_MS);
      }),
    );
    window.addEventListener("online", this.#wake);
    window.addEventListener("offline", this.#goOffline);
    document.addEventListener("visibilitychange", this.#wake);
    if (navigator.onLine === false) this.#setState(ConnectionState.OFFLINE);
    else this.#connect();
  }

  /** Detach for good (switching sessions, leaving the page); the session itself lives on. */
  close() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearTimers();
    for (const subscription of this.#subscriptions) subscription.dispose();
    this.#subscriptions = [];
    window.removeEventListener("online", this.#wake);
    window.removeEventListener("offline", this.#goOffline);
    document.removeEventListener("visibilitychange", this.#wake);
    this.#candidates.drop();
    for (const transport of this.#retiring) transport.close();
    this.#retiring.clear();
    this.#live?.close();
    this.#live = null;
  }

  #connect() {
    this.#clearTimers();
    this.#candidates.drop();
    this.#handingOver = false; // a reconnect drops input like any typed while disconnected
    this.#heldInput = [];
    const useLongPoll =
      this.#longPollOnly ||
      this.#preferLongPoll ||
      this.#websocketFailures >= WEBSOCKET_FAILURES_BEFORE_FALLBACK;
    this.#goLive(useLongPoll ? LongPollTransport : WebSocketTransport);
  }

  /** @param {typeof WebSocketTransport | typeof LongPollTransport} Transport */
  #goLive(Transport) {
    const transport = this.#createTransport(Transport);
    const { cols, rows } = this.#term;
    this.#live = transport;
    this.#helloSeen = false;
    this.#renderedSinceAck = 0;
    this.#sentSize = { cols, rows };
    this.transport = transport.name;
    this.#setState(ConnectionState.CONNECTING);
    const deadline = transport.name === "websocket" ? WEBSOCKET_HELLO_DEADLINE_MS : HELLO_TIMEOUT_MS;
    this.#timers.hello = setTimeout(() => this.#helloOverdue(transport), deadline);
    transport.start();
  }

  /**
   * Every event goes to the live transport's handlers, or into the candidate's record; events of
   * transports given up or retired are dropped.
   * @param {typeof WebSocketTransport | typeof LongPollTransport} Transport
   */
  #createTransport(Transport) {
    const { cols, rows } = this.#term;
    /** @type {(event: TransportEvent) => void} */
    const route = (event) => this.#route(transport, event);
    const transport = new Transport(this.session, cols, rows, {
      onMessage: (message) => route(["message", message]),
      onOutput: (data) => route(["output", data]),
      onClose: (info) => route(["close", info]),
    });
    return transport;
  }

  /** @param {Transport} transport @param {TransportEvent} event */
  #route(transport, [kind, value]) {
    if (transport === this.#live) {
      if (kind === "message") this.#onMessage(transport, value);
      else if (kind === "output") this.#onOutput(transport, value);
      else this.#onClose(transport, value);
    } else {
      this.#candidates.record(transport, [kind, value]);
    }
  }

  /**
   * No `hello` in time. A WebSocket is not closed: long-poll starts and the socket stays on as the
   * candidate, so a slow network that answers later still gets its WebSocket back.
   * @param {Transport} transport
   */
  #helloOverdue(transport) {
    if (transport !== this.#live) return;
    if (transport.name !== "websocket") {
      this.#abandon(transport);
      return;
    }
    this.#live = null;
    this.#candidates.adopt(transport, this.#sentSize);
    this.#goLive(LongPollTransport);
  }

  /** @param {Transport} transport @param {any} message */
  #onMessage(transport, message) {
    this.#stillAlive();
    switch (message.type) {
      case PROTOCOL.HELLO:
        this.#onHello(transport, message);
        break;
      case PROTOCOL.READY:
        // Leave replay mode only once xterm has parsed every replayed byte: a write callback
        // runs after all earlier writes, so nothing in the replay can answer into the shell.
        // Only then is the terminal usable, so only then is it "connected".
        this.#term.write("", () => {
          if (transport !== this.#live) return;
          this.replaying = false;
          this.#releaseHeldInput();
          this.#setState(ConnectionState.CONNECTED);
          this.#releaseOfflineInput();
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
      case PROTOCOL.HISTORY:
        this.dispatchEvent(new CustomEvent("history", { detail: message }));
        break;
      case PROTOCOL.DOWNLOAD:
        this.dispatchEvent(new CustomEvent("download", { detail: message }));
        break;
    }
  }

  /** @param {Transport} transport @param {any} message */
  #onHello(transport, message) {
    clearTimeout(this.#timers.hello);
    this.#helloSeen = true;
    this.#connectedAt = Date.now();
    this.#websocketFailures = 0;
    if (transport.name === "longpoll") {
      // It got through. Unless forced, WebSocket is tried again beside it until one opens.
      this.#preferLongPoll = !this.#longPollOnly;
      if (!this.#longPollOnly) this.#candidates.schedule();
    } else {
      this.#preferLongPoll = false;
    }
    this.replaying = true;
    // With tmux the pane's history is tmux's, reached by `scroll`: a second, partial copy in
    // xterm.js would only mislead the scrollbar and Find.
    this.history = message.history === PROTOCOL.HISTORY_LOCAL ? PROTOCOL.HISTORY_LOCAL : PROTOCOL.HISTORY_TMUX;
    this.#term.options.scrollback = this.history === PROTOCOL.HISTORY_LOCAL ? LOCAL_SCROLLBACK : 0;
    this.dispatchEvent(new CustomEvent("hello", { detail: { history: this.history } }));
    this.#term.reset();
    this.#sendSize(); // the window may have changed while the connection was being set up
  }

  /** @param {Transport} transport @param {Uint8Array} data */
  #onOutput(transport, data) {
    this.#stillAlive();
    const size = data.length;
    // Ack from the write callback, i.e. after rendering, so the gateway's flow control tracks
    // what this browser has actually drawn rather than what the network delivered.
    this.#writesFrom.push(transport);
    this.#term.write(data, () => {
      this.#writesFrom.shift();
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
    this.#live = null;
    if (this.#candidates.current?.ready) return; // a handover is under way: the candidate takes over
    this.#clearTimers();
    this.#candidates.drop();
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
    if (code === PROTOCOL.CLOSE_TOO_MANY) {
      // A limit, not a blocked WebSocket: say which (either transport), and retry slowly.
      this.#notify(reason);
      this.#attempt = Math.max(this.#attempt, TOO_MANY_ATTEMPT);
      this.#scheduleReconnect();
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
      this.#preferLongPoll = false;
    }
    this.#scheduleReconnect();
  }

  /**
   * A WebSocket that fails while the gateway answers plain HTTP is blocked on the way (a proxy);
   * one that fails while nothing answers met a gateway restart, and WebSocket is tried again:
   * otherwise a restart could leave the page on long-poll for good.
   */
  async #judgeWebSocketFailure() {
    const gatewayUp = await request("/health").then(
      () => true,
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

  /** A trial WebSocket, while long-poll is live. */
  #openCandidate() {
    if (this.#stopped || this.#live?.name !== "longpoll") return null;
    const transport = this.#createTransport(WebSocketTransport);
    const { cols, rows } = this.#term;
    transport.start();
    return { transport, size: { cols, rows } };
  }

  /**
   * Move the terminal to a candidate that has replayed the screen (make before break). Input typed
   * from here is held until the old transport has delivered all it was given, so no keystroke is
   * lost or overtaken; then the candidate's recorded hello, replay and ready are played into the
   * terminal as if live (the replay starts with a reset, so nothing shows twice), the held input
   * follows on the new transport, and the old one is closed a little later.
   * @param {Candidate} candidate
   */
  async #handOver(candidate) {
    const old = this.#live;
    this.#handingOver = true;
    if (old) await old.flush();
    if (this.#stopped || this.#candidates.current !== candidate) {
      // The candidate was dropped meanwhile: what was held goes the normal way, never stuck here.
      if (!this.#handingOver) return;
      this.#handingOver = false;
      for (const input of this.#heldInput.splice(0)) this.#sendOrHold(input);
      return;
    }
    this.#candidates.taken();
    this.#clearTimers();
    if (old) this.#retire(old);
    const { transport, events, size } = candidate;
    this.#live = transport;
    this.#helloSeen = false;
    this.#renderedSinceAck = 0;
    this.#sentSize = size;
    this.transport = transport.name;
    for (const event of events) this.#route(transport, event);
  }

  /** @param {Transport} transport */
  #retire(transport) {
    this.#retiring.add(transport);
    setTimeout(() => {
      transport.close();
      this.#retiring.delete(transport);
    }, RETIRE_GRACE_MS);
  }

  #releaseHeldInput() {
    if (!this.#handingOver || this.#candidates.current) return; // no handover, or not switched yet
    this.#handingOver = false;
    for (const input of this.#heldInput.splice(0)) this.#sendOrHold(input);
  }

  /** "Reconnect now": skip the backoff's wait. */
  reconnectNow() {
    if (this.#stopped) return;
    if (this.state === ConnectionState.RECONNECTING || this.state === ConnectionState.OFFLINE) {
      this.#attempt = 0;
      this.#connect();
    }
  }

  /**
   * Scroll tmux's history (PROTOCOL.md, `scroll`); false when it cannot be sent now.
   * @param {{lines?: number, to?: number}} request
   */
  scroll(request) {
    const live = this.#openInput();
    if (!live || this.#handingOver) return false;
    live.send({ type: PROTOCOL.SCROLL, ...request });
    return true;
  }

  /** The browser says the network is gone: say so at once rather than after a timeout. */
  #goOffline = () => {
    if (this.#stopped || this.state === ConnectionState.ENDED || this.state === ConnectionState.MISSING) return;
    this.#clearTimers();
    this.#candidates.drop();
    const live = this.#live;
    this.#live = null;
    live?.close();
    this.replaying = false;
    this.#setState(ConnectionState.OFFLINE);
  };

  /** `online` and "tab visible again" are the moments a waiting reconnect should not wait. */
  #wake = () => {
    if (this.#stopped || document.visibilityState !== "visible") return;
    if (this.state === ConnectionState.RECONNECTING || this.state === ConnectionState.OFFLINE) {
      this.#attempt = 0;
      this.#connect();
    } else if (this.state === ConnectionState.CONNECTED && this.#live && !this.#timers.probe) {
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
    if (TERMINAL_REPORT.test(data)) {
      this.#sendReport(data);
      return;
    }
    const input = { binary: false, data: this.#transformInput(data) };
    if (this.#handingOver) this.#heldInput.push(input);
    else this.#sendOrHold(input);
  }

  /**
   * An answer to a terminal query goes at once to the connection whose output asked, unchanged
   * (no sticky Ctrl), and only if it is still the one taking input. One whose output asked but is
   * gone (closed, or replaced by a handover) has its answer dropped: kept for the reconnect like a
   * typed key, it reached the next tmux client, which has its own answer and read this one as
   * keys (`0;276;0c` typed into the shell). Outside any parse it is a key that looks like a report
   * (Ctrl+F3): sent if connected, dropped if not (it would land in a different moment anyway).
   * @param {string} data
   */
  #sendReport(data) {
    const live = this.#openInput();
    const asker = this.#writesFrom.length ? this.#writesFrom[0] : live;
    if (live && asker === live) live.send({ type: PROTOCOL.INPUT, data });
  }

  /** @param {string} data */
  #sendBinary(data) {
    if (this.#handingOver) this.#heldInput.push({ binary: true, data });
    else this.#sendOrHold({ binary: true, data });
  }

  /** @param {{binary: boolean, data: string}} input sent on the live transport, or held while down */
  #sendOrHold(input) {
    const live = this.#openInput();
    if (!live) this.#holdWhileDown(input);
    else if (input.binary) live.sendBinary(input.data);
    else live.send({ type: PROTOCOL.INPUT, data: input.data });
  }

  /**
   * A key typed while disconnected is kept for the reconnect, or refused out loud: never lost
   * silently. A session that ended takes no input at all.
   * @param {{binary: boolean, data: string}} input
   */
  #holdWhileDown(input) {
    if (this.state === ConnectionState.ENDED || this.state === ConnectionState.MISSING) {
      this.#notify("This session has ended: what you typed was not sent");
      return;
    }
    const size = new TextEncoder().encode(input.data).length;
    if (this.#offlineBytes + size > OFFLINE_INPUT_LIMIT) {
      this.#notify(`Not connected: typing is kept only up to ${OFFLINE_INPUT_LIMIT / 1024} KiB; this was not sent`);
      return;
    }
    this.#offlineInput.push(input);
    this.#offlineBytes += size;
    this.dispatchEvent(new CustomEvent("pendinginput", { detail: { bytes: this.#offlineBytes } }));
  }

  #releaseOfflineInput() {
    const live = this.#openInput();
    if (!this.#offlineInput.length || !live) return;
    for (const { binary, data } of this.#offlineInput.splice(0)) {
      if (binary) live.sendBinary(data);
      else live.send({ type: PROTOCOL.INPUT, data });
    }
    this.#offlineBytes = 0;
    this.dispatchEvent(new CustomEvent("pendinginput", { detail: { bytes: 0 } }));
  }

  /** Bytes typed while disconnected, waiting for the reconnect. */
  get pendingInputBytes() {
    return this.#offlineBytes;
  }

  /** The live transport when it takes input (hello seen, replay over), else null. */
  #openInput() {
    return this.#live !== null && this.#helloSeen && !this.replaying ? this.#live : null;
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
    if (this.#offlineBytes > 0) this.#notify("The session is gone: what you typed while disconnected was not sent");
    this.#offlineInput = [];
    this.#offlineBytes = 0;
    this.#clearTimers();
    this.#candidates.drop();
    this.#handingOver = false;
    this.#heldInput = [];
    this.#live?.close();
    this.#live = null;
    this.replaying = false;
    this.#setState(state);
  }

  #clearTimers() {
    for (const name of /** @type {TimerName[]} */ (Object.keys(this.#timers))) {
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
