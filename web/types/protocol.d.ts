// The types of /js/protocol.js, which services/gateway/protocol.py renders at runtime.
// Generated: .venv/bin/python -m tests.web.test_js_types (tests/web/test_js_types.py checks it).
export declare const PROTOCOL: {
  readonly VERSION: 1;
  readonly HELLO: "hello";
  readonly READY: "ready";
  readonly EXIT: "exit";
  readonly ERROR: "error";
  readonly PONG: "pong";
  readonly OUTPUT: "output";
  readonly CLOSED: "closed";
  readonly HISTORY: "history";
  readonly DOWNLOAD: "download";
  readonly SCROLL: "scroll";
  readonly HISTORY_TMUX: "tmux";
  readonly HISTORY_LOCAL: "local";
  readonly MAX_SCROLL_LINES: 100000;
  readonly INPUT: "input";
  readonly RESIZE: "resize";
  readonly ACK: "ack";
  readonly PING: "ping";
  readonly ACK_EVERY: 65536;
  readonly PING_INTERVAL_SECONDS: 20;
  readonly MAX_COLS: 1000;
  readonly MAX_ROWS: 500;
  readonly CLOSE_NORMAL: 1000;
  readonly CLOSE_BAD_REQUEST: 4400;
  readonly CLOSE_UNAUTHORIZED: 4401;
  readonly CLOSE_FORBIDDEN: 4403;
  readonly CLOSE_NO_SESSION: 4404;
  readonly CLOSE_TOO_MANY: 4429;
  readonly CLOSE_NOT_READING: 4408;
  readonly CLOSE_TERMINAL_LOST: 4500;
  readonly POLL_WAIT_SECONDS: 25;
};
