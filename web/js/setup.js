/**
 * The first-run setup, as the page shows it: a loading screen (snake beside the step list) while
 * setup runs on a first visit, a compact badge and panel in the top bar afterwards, and a launcher
 * for every agent as soon as it is installed (in the panel with a choice of model: models.js).
 *
 * The terminal never waits for any of this: it connects behind the loading screen, which only
 * keeps keys and focus away from it until the user goes to it (button or Escape).
 *
 * Data: GET /api/setup-status, polled every second while setup runs and every 15 s after.
 * Elapsed times come from the server's clock (`now` in each answer) advanced by the page's
 * monotonic clock between answers, so a browser with a wrong wall clock still counts right.
 */

import { request } from "./api.js";
import { ModelChoices } from "./models.js";
import { SnakeGame } from "./snake.js";

const FAST_POLL_MS = 1_000;
/** Nothing to follow (no run has started, or setup is off): look now and then for a run. */
const IDLE_POLL_MS = 5_000;
/** Finished: only a retry (maybe from another tab) or a restart of the app changes anything. */
const SLOW_POLL_MS = 15_000;
/** How long "all set" shows before the loading screen gives way to the terminal. */
const READY_MS = 1_200;
/** After a retry was accepted, the old "failed" status may still be read until the runner writes. */
const RETRY_GRACE_MS = 15_000;
const TICK_MS = 250;
const DISMISSED_KEY = "coding-agents.loading.dismissed";
/** What sits behind the loading screen and must take neither focus nor keys while it shows. */
const BEHIND_LOADING = ["topbar", "terminal", "search", "session-overlay", "keybar", "setup-panel", "sync-popover"];

const STATE_LABELS = { pending: "waiting", running: "running", ok: "done", failed: "failed", skipped: "skipped" };
const HEADLINES = {
  pending: "Getting ready…",
  running: "Installing your coding agents…",
  done: "All set: opening the terminal",
  failed: "Setup finished with problems",
};
/** Game keys by KeyboardEvent.code, so WASD sits under the same fingers on any keyboard layout. */
const GAME_KEYS = {
  ArrowUp: "up",
  ArrowDown: "down",
  ArrowLeft: "left",
  ArrowRight: "right",
  KeyW: "up",
  KeyS: "down",
  KeyA: "left",
  KeyD: "right",
};

/**
 * @typedef {{id: string, title: string, kind: string, state: string, after: string[],
 *            version: string, agent: boolean, started: number | null, ended: number | null,
 *            exit_code: number | null, reason: string, log_tail: string[]}} SetupStep
 * @typedef {{state: string, started: number | null, finished: number | null,
 *            runner_pid: number | null, now: number, reason: string, steps: SetupStep[]}} SetupStatus
 * @typedef {{onRetry(step: string | null): void, onLaunch(agent: string, title: string): void}} StepActions
 *   onRetry: one step, or (null) every failed one
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {import("./status.js").Toast} Toast
 */

// ---- API ------------------------------------------------------------------------------------

/** @returns {Promise<SetupStatus>} */
export async function fetchSetupStatus() {
  return normalise(await (await request("/api/setup-status")).json());
}

/**
 * Starts a new run: of one step, or of every step that failed. 409 while a run is in progress.
 * @param {string | null} step
 */
export async function retrySetup(step) {
  await request("/api/setup/retry", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(step ? { step } : {}),
  });
}

/**
 * Opens a tmux window running `agent` in `session` (tmux shows the new window at once); without
 * tmux, a session of its own, whose name comes back.
 * @param {string} session
 * @param {string} agent
 * @returns {Promise<string>} the session the agent runs in
 */
export async function openAgentWindow(session, agent) {
  const response = await request(`/api/sessions/${encodeURIComponent(session)}/windows`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ agent }),
  });
  const body = await response.json();
  return String(body?.window?.session ?? session);
}

/**
 * Fills in what an older or newer runner may leave out, so the views need no checks.
 * @param {any} data
 * @returns {SetupStatus}
 */
function normalise(data) {
  const steps = Array.isArray(data?.steps) ? data.steps : [];
  return {
    state: String(data?.state ?? "pending"),
    started: data?.started ?? null,
    finished: data?.finished ?? null,
    runner_pid: data?.runner_pid ?? null,
    now: typeof data?.now === "number" ? data.now : Date.now() / 1000,
    reason: String(data?.reason ?? ""),
    steps: steps.map((/** @type {any} */ step) => ({
      id: String(step.id),
      title: String(step.title || step.id),
      kind: String(step.kind ?? ""),
      state: String(step.state ?? "pending"),
      after: Array.isArray(step.after) ? step.after : [],
      version: String(step.version ?? ""),
      agent: Boolean(step.agent),
      started: step.started ?? null,
      ended: step.ended ?? null,
      exit_code: step.exit_code ?? null,
      reason: String(step.reason ?? ""),
      log_tail: Array.isArray(step.log_tail) ? step.log_tail.map(String) : [],
    })),
  };
}

// ---- helpers --------------------------------------------------------------------------------

/** The server's clock, carried forward between answers by the page's monotonic clock. */
class ServerClock {
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

/** @param {SetupStep} step @param {ServerClock} clock @returns {number | null} */
function elapsed(step, clock) {
  if (step.started === null) return null;
  const end = step.ended ?? (step.state === "running" ? clock.now() : null);
  return end === null ? null : Math.max(0, end - step.started);
}

/** @param {number} seconds */
function formatSeconds(seconds) {
  const whole = Math.floor(seconds);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
}

const isGood = (/** @type {string} */ state) => state === "ok" || state === "skipped";
const isFinished = (/** @type {string} */ state) => isGood(state) || state === "failed";

/** @param {SetupStatus} status */
function progress(status) {
  const total = status.steps.length;
  const finished = status.steps.filter((step) => isFinished(step.state)).length;
  const failed = status.steps.filter((step) => step.state === "failed").length;
  return { total, finished, failed };
}

/** @param {SetupStatus} status */
function summaryText(status) {
  const { total, finished, failed } = progress(status);
  // The run's own reason (a broken agents.yaml, a runner that died) says more than any count.
  const why = status.state === "failed" && status.reason ? ` · ${status.reason}` : "";
  if (total === 0) {
    if (status.state === "done") return "Nothing to set up.";
    return status.state === "failed" ? `Setup failed before it listed its steps${why}` : "Waiting for setup to start…";
  }
  const failures = failed ? ` · ${failed} failed` : "";
  return `${finished} of ${total} steps finished${failures}${why}`;
}

/** A run to follow: running, or about to (the runner has listed its steps but not begun). */
const inProgress = (/** @type {SetupStatus} */ status) =>
  status.state === "running" || (status.state === "pending" && status.steps.length > 0);

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Writes only on change: the views update every second and must not disturb selection or AT. */
function setText(/** @type {HTMLElement} */ node, /** @type {string} */ text) {
  if (node.textContent !== text) node.textContent = text;
}

function readTabFlag(/** @type {string} */ key) {
  try {
    return sessionStorage.getItem(key) === "1";
  } catch {
    return false; // storage disabled: just not remembered
  }
}

function writeTabFlag(/** @type {string} */ key) {
  try {
    sessionStorage.setItem(key, "1");
  } catch {
    // storage disabled: just not remembered
  }
}

// ---- the step list (shared by the loading screen and the panel) -----------------------------

/**
 * @typedef {{item: HTMLLIElement, title: HTMLElement, version: HTMLElement, badge: HTMLElement,
 *            time: HTMLElement, reason: HTMLElement, last: HTMLElement, log: HTMLDetailsElement,
 *            logText: HTMLElement, retry: HTMLButtonElement}} StepRow
 */

/**
 * Overall bar, launchers and one row per step. Rows are kept by step id and updated in place, so
 * an expanded log or a focused Retry button survives the next poll.
 */
class StepsView {
  #clock;
  #count;
  #overall;
  /** Retries every failed step at once when several failed, or a run that failed before any. */
  #runRetry;
  #launchers;
  /** @type {ModelChoices | null} */
  #models;
  #list;
  /** @type {Map<string, StepRow>} */
  #rows = new Map();
  /** @type {Map<string, HTMLElement>} each launcher, or (with models) the row of it and its select */
  #launcherItems = new Map();
  /** @type {SetupStep[]} */
  #steps = [];

  /**
   * @param {HTMLElement} root
   * @param {ServerClock} clock
   * @param {StepActions} actions
   * @param {ModelChoices | null} [models] a model select beside each launcher (the panel's)
   */
  constructor(root, clock, actions, models = null) {
    this.#clock = clock;
    this.#models = models;

    const summary = element("div", "setup-summary");
    this.#count = element("p", "setup-count");
    // Polite and on the summary only: announcing every row's timer would drown a screen reader.
    this.#count.setAttribute("aria-live", "polite");
    this.#overall = element("div", "bar overall");
    this.#overall.setAttribute("role", "progressbar");
    this.#overall.setAttribute("aria-label", "Setup progress");
    this.#overall.setAttribute("aria-valuemin", "0");
    this.#overall.append(element("span"));
    this.#runRetry = /** @type {HTMLButtonElement} */ (element("button", "step-retry run-retry", "Retry"));
    this.#runRetry.type = "button";
    this.#runRetry.hidden = true;
    summary.append(this.#count, this.#overall, this.#runRetry);

    this.#launchers = element("div", "launchers");
    this.#launchers.setAttribute("role", "group");
    this.#launchers.setAttribute("aria-label", "Start an agent in a new window");
    this.#launchers.hidden = true;
    if (models) {
      this.#launchers.classList.add("with-models");
      this.#launchers.append(models.note);
    }

    this.#list = element("ol", "steps");
    root.append(summary, this.#launchers, this.#list);

    root.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      if (!button || button.disabled) return;
      if (button === this.#runRetry) actions.onRetry(null);
      else if (button.classList.contains("step-retry")) actions.onRetry(button.closest("li")?.dataset.step ?? null);
      else if (button.dataset.agent) actions.onLaunch(button.dataset.agent, button.dataset.title ?? "");
    });
  }

  /**
   * @param {SetupStatus} status
   * @param {{canRetry: boolean, retrying: boolean}} retry
   */
  update(status, retry) {
    this.#steps = status.steps;
    const { total, finished } = progress(status);
    setText(this.#count, summaryText(status));
    this.#overall.setAttribute("aria-valuemax", String(total));
    this.#overall.setAttribute("aria-valuenow", String(finished));
    this.#overall.dataset.state = status.state;
    const fill = /** @type {HTMLElement} */ (this.#overall.firstElementChild);
    fill.style.width = `${total ? (100 * finished) / total : status.state === "done" ? 100 : 0}%`;
    // One failed step has its own button; none (the run itself failed) or several get this one.
    const failedSteps = status.steps.filter((step) => step.state === "failed").length;
    this.#runRetry.hidden = failedSteps === 1 || !(retry.canRetry || retry.retrying);
    this.#runRetry.disabled = retry.retrying;
    setText(this.#runRetry, retry.retrying ? "Retrying…" : failedSteps ? "Retry all failed" : "Retry");

    this.#updateLaunchers(status.steps.filter((step) => step.agent && isGood(step.state)));

    const ids = new Set(status.steps.map((step) => step.id));
    for (const [id, row] of this.#rows) {
      if (!ids.has(id)) {
        row.item.remove();
        this.#rows.delete(id);
      }
    }
    for (const step of status.steps) {
      let row = this.#rows.get(step.id);
      if (!row) {
        row = createRow(step.id);
        this.#rows.set(step.id, row);
      }
      fillRow(row, step, retry);
    }
    // Re-append only when the order changed: moving a focused node would drop its focus.
    const order = status.steps.map((step) => /** @type {StepRow} */ (this.#rows.get(step.id)).item);
    if (order.some((item, index) => this.#list.children[index] !== item)) this.#list.append(...order);
    this.tick();
  }

  /** Advances the running steps' timers between polls. */
  tick() {
    for (const step of this.#steps) {
      const row = this.#rows.get(step.id);
      if (!row) continue;
      const seconds = elapsed(step, this.#clock);
      setText(row.time, seconds === null ? "" : formatSeconds(seconds));
      row.time.dataset.seconds = seconds === null ? "" : String(Math.floor(seconds));
    }
  }

  get hasRunning() {
    return this.#steps.some((step) => step.state === "running");
  }

  /** @param {SetupStep[]} ready */
  #updateLaunchers(ready) {
    const ids = new Set(ready.map((step) => step.id));
    for (const [id, item] of this.#launcherItems) {
      if (!ids.has(id)) {
        item.remove();
        this.#launcherItems.delete(id);
        this.#models?.release(id);
      }
    }
    for (const step of ready) {
      if (this.#launcherItems.has(step.id)) continue;
      const button = /** @type {HTMLButtonElement} */ (element("button", "launcher"));
      button.type = "button";
      button.dataset.agent = step.id;
      button.dataset.title = step.title;
      button.title = `Start ${step.title} in a new window of this session`;
      button.append(element("span", "launcher-icon", "▶"), ` ${step.title}`);
      let item = /** @type {HTMLElement} */ (button);
      if (this.#models) {
        item = element("div", "launcher-row");
        item.append(button, this.#models.slot(step.id, step.title));
      }
      this.#launcherItems.set(step.id, item);
      // Launchers in step order, before the models note.
      this.#launchers.insertBefore(item, this.#models ? this.#models.note : null);
    }
    this.#launchers.hidden = ready.length === 0;
  }
}

/** @param {string} id @returns {StepRow} */
function createRow(id) {
  const item = /** @type {HTMLLIElement} */ (element("li", "step"));
  item.dataset.step = id;
  const head = element("div", "step-head");
  const title = element("span", "step-title");
  const version = element("span", "step-version");
  const badge = element("span", "step-badge");
  const time = element("span", "step-time");
  head.append(title, version, badge, time);
  // Decorative: the badge says the same in words.
  const bar = element("div", "bar");
  bar.setAttribute("aria-hidden", "true");
  bar.append(element("span"));
  const reason = element("p", "step-reason");
  const last = element("p", "step-last");
  const actions = element("div", "step-actions");
  const log = /** @type {HTMLDetailsElement} */ (element("details", "step-log"));
  const logText = element("pre");
  log.append(element("summary", "", "Log"), logText);
  const retry = /** @type {HTMLButtonElement} */ (element("button", "step-retry", "Retry"));
  retry.type = "button";
  actions.append(log, retry);
  item.append(head, bar, reason, last, actions);
  return { item, title, version, badge, time, reason, last, log, logText, retry };
}

/**
 * @param {StepRow} row
 * @param {SetupStep} step
 * @param {{canRetry: boolean, retrying: boolean}} retry
 */
function fillRow(row, step, retry) {
  row.item.dataset.state = step.state;
  setText(row.title, step.title);
  setText(row.version, step.version);
  setText(row.badge, STATE_LABELS[/** @type {keyof STATE_LABELS} */ (step.state)] ?? step.state);
  const failed = step.state === "failed";
  // Why it failed, or why it was skipped ("already installed"); nothing for the other states.
  const reason = failed || step.state === "skipped" ? step.reason : "";
  setText(row.reason, reason);
  row.reason.hidden = !reason;
  // While it runs, the newest log line shows that it is alive.
  const last = step.state === "running" ? (step.log_tail.at(-1) ?? "") : "";
  setText(row.last, last);
  row.last.hidden = !last;
  setText(row.logText, step.log_tail.join("\n"));
  row.log.hidden = !(failed && step.log_tail.length);
  row.retry.hidden = !(failed && (retry.canRetry || retry.retrying));
  row.retry.disabled = retry.retrying;
  setText(row.retry, retry.retrying ? "Retrying…" : "Retry");
  row.retry.setAttribute("aria-label", `Retry ${step.title}`);
  row.retry.parentElement.hidden = row.log.hidden && row.retry.hidden;
}

// ---- the loading screen ----------------------------------------------------------------------

class LoadingScreen {
  #root;
  #title;
  #steps;
  #dismiss;
  #canvas;
  #score;
  #high;
  #hint;
  /** @type {SnakeGame | null} created on first show: most visits never need it */
  #snake = null;
  #readyTimer = 0;
  #onDismiss;
  #onReady;

  /**
   * @param {HTMLElement} root
   * @param {ServerClock} clock
   * @param {StepActions & {onDismiss(): void, onReady(): void}} actions
   */
  constructor(root, clock, actions) {
    const find = (/** @type {string} */ selector) => /** @type {HTMLElement} */ (root.querySelector(selector));
    this.#root = root;
    this.#title = find(".loading-title");
    this.#dismiss = find(".loading-dismiss");
    this.#canvas = /** @type {HTMLCanvasElement} */ (find("canvas"));
    this.#score = find(".snake-score");
    this.#high = find(".snake-high");
    this.#hint = find(".snake-hint");
    this.#onDismiss = actions.onDismiss;
    this.#onReady = actions.onReady;
    this.#steps = new StepsView(find(".loading-steps"), clock, {
      onRetry: actions.onRetry,
      // Launching means the user wants the terminal: go there first, then open the agent in it.
      onLaunch: (agent, title) => {
        this.dismiss();
        actions.onLaunch(agent, title);
      },
    });
    this.#dismiss.addEventListener("click", () => this.dismiss());
    // Capture phase on window: runs before anything else on the page (xterm included) sees a key.
    for (const type of ["keydown", "keypress", "keyup"]) {
      window.addEventListener(type, (event) => this.#onKey(/** @type {KeyboardEvent} */ (event)), true);
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") this.#snake?.pause();
    });
  }

  get visible() {
    return !this.#root.hidden;
  }

  get hasRunning() {
    return this.#steps.hasRunning;
  }

  show() {
    if (this.visible) return;
    this.#root.hidden = false;
    for (const id of BEHIND_LOADING) {
      const behind = document.getElementById(id);
      if (behind) behind.inert = true;
    }
    this.#startSnake();
    // The terminal had focus (it is focused on load); keys must now go to the game.
    this.#canvas.focus({ preventScroll: true });
  }

  /** Hides the screen; the caller decides where focus goes next. */
  hide() {
    clearTimeout(this.#readyTimer);
    this.#readyTimer = 0;
    if (!this.visible) return;
    this.#root.hidden = true;
    for (const id of BEHIND_LOADING) {
      const behind = document.getElementById(id);
      if (behind) behind.inert = false;
    }
    this.#snake?.pause();
  }

  /** The user chose the terminal: remembered for this tab, so a reload does not bring it back. */
  dismiss() {
    this.hide();
    this.#onDismiss();
  }

  /**
   * @param {SetupStatus} status
   * @param {{canRetry: boolean, retrying: boolean}} retry
   */
  update(status, retry) {
    this.#root.dataset.state = status.state;
    setText(this.#title, HEADLINES[/** @type {keyof HEADLINES} */ (status.state)] ?? HEADLINES.pending);
    this.#steps.update(status, retry);
    if (status.state === "done" && this.visible && !this.#readyTimer) {
      // A short "all set" moment, so the screen does not vanish before it can be read.
      this.#readyTimer = setTimeout(() => {
        this.#readyTimer = 0;
        this.hide();
        this.#onReady();
      }, READY_MS);
    } else if (status.state !== "done" && this.#readyTimer) {
      clearTimeout(this.#readyTimer);
      this.#readyTimer = 0;
    }
  }

  tick() {
    this.#steps.tick();
  }

  #startSnake() {
    if (this.#snake) return;
    const snake = new SnakeGame(this.#canvas);
    this.#snake = snake;
    const show = () => {
      const { score, high, phase } = snake.state;
      setText(this.#score, String(score));
      setText(this.#high, String(high));
      const hints = {
        ready: "Arrow keys or WASD (swipe on a phone) to start.",
        running: "Eat the red dots; each one makes you longer and faster.",
        paused: "Paused: an arrow key or Space carries on.",
        over: "Game over. Press Space or tap to play again.",
      };
      setText(this.#hint, hints[phase]);
    };
    snake.addEventListener("score", show);
    snake.addEventListener("phase", show);
    show();
    // For tests and the curious: the game's state, and a way to put the food where wanted.
    window.__snake = {
      get state() {
        return snake.state;
      },
      placeFood: (/** @type {[number, number]} */ cell) => snake.placeFood(cell),
    };
  }

  /** @param {KeyboardEvent} event */
  #onKey(event) {
    if (!this.visible) return;
    // Nothing behind the screen (the terminal above all) may see a key while it shows.
    event.stopPropagation();
    if (event.type !== "keydown") return;
    if (event.key === "Escape") {
      event.preventDefault();
      this.dismiss();
      return;
    }
    // Browser shortcuts (reload, zoom, devtools) keep working.
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const direction = GAME_KEYS[/** @type {keyof GAME_KEYS} */ (event.code)];
    if (direction) {
      event.preventDefault(); // no page scrolling on arrows
      this.#snake?.steer(/** @type {import("./snake.js").Direction} */ (direction));
      return;
    }
    if (event.key === " " || event.key === "Enter") {
      // On a button (Retry, a launcher, "Go to terminal") these keys press it, as usual.
      const target = /** @type {HTMLElement} */ (event.target);
      if (target.closest?.("button, summary, a, input")) return;
      event.preventDefault();
      this.#snake?.primary();
    }
  }
}

// ---- the badge and panel in the top bar -------------------------------------------------------

class SetupPanel {
  #badge;
  #label;
  #panel;
  #steps;
  #fullScreen;
  #onOpen;
  #onClose;

  /**
   * @param {HTMLButtonElement} badge
   * @param {HTMLElement} panel
   * @param {ServerClock} clock
   * @param {StepActions & {onShowLoading(): void, onOpen(): void, onClose(): void}} actions
   * @param {ModelChoices} models the model select beside each launcher
   */
  constructor(badge, panel, clock, actions, models) {
    this.#badge = badge;
    this.#label = /** @type {HTMLElement} */ (badge.querySelector(".label"));
    this.#panel = panel;
    this.#onOpen = actions.onOpen;
    this.#onClose = actions.onClose;

    const head = element("div", "panel-head");
    const heading = element("h2", "", "Setup");
    heading.id = "setup-panel-title";
    panel.setAttribute("aria-labelledby", heading.id);
    this.#fullScreen = /** @type {HTMLButtonElement} */ (element("button", "panel-link", "Full screen"));
    this.#fullScreen.type = "button";
    this.#fullScreen.title = "Show the loading screen (and its game) again";
    const close = /** @type {HTMLButtonElement} */ (element("button", "panel-close", "×"));
    close.type = "button";
    close.setAttribute("aria-label", "Close the setup panel");
    head.append(heading, this.#fullScreen, close);
    const body = element("div");
    panel.append(head, body);
    this.#steps = new StepsView(body, clock, actions, models);

    badge.addEventListener("click", () => (this.open ? this.close() : this.#show()));
    close.addEventListener("click", () => this.close());
    this.#fullScreen.addEventListener("click", () => {
      this.close(false);
      actions.onShowLoading();
    });
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close();
      }
    });
    // A click anywhere else (the terminal, most often) closes it, as a popover does.
    document.addEventListener(
      "pointerdown",
      (event) => {
        const target = /** @type {Node} */ (event.target);
        if (this.open && !panel.contains(target) && !badge.contains(target)) this.close(false);
      },
      true,
    );
  }

  get open() {
    return !this.#panel.hidden;
  }

  get hasRunning() {
    return this.#steps.hasRunning;
  }

  /** @param {boolean} [refocus] give the terminal its focus back (not when a click moves it anyway) */
  close(refocus = true) {
    if (!this.open) return;
    this.#panel.hidden = true;
    this.#badge.setAttribute("aria-expanded", "false");
    if (refocus) this.#onClose();
  }

  /**
   * @param {SetupStatus} status
   * @param {{canRetry: boolean, retrying: boolean}} retry
   */
  update(status, retry) {
    const { total, finished } = progress(status);
    const agents = status.steps.some((step) => step.agent && isGood(step.state));
    // Nothing to report when no run was ever listed (setup is off, or has not started yet),
    // unless it failed before it could list any.
    this.#badge.hidden = total === 0 && status.state !== "failed";
    this.#badge.dataset.state = status.state;
    const label =
      status.state === "failed"
        ? "setup failed"
        : status.state === "done"
          ? agents
            ? "agents"
            : "setup ✓"
          : `setup ${finished}/${total}`;
    setText(this.#label, label);
    this.#badge.title = `Setup: ${summaryText(status)}`;
    this.#fullScreen.hidden = !inProgress(status);
    this.#steps.update(status, retry);
  }

  tick() {
    this.#steps.tick();
  }

  #show() {
    this.#panel.hidden = false;
    this.#badge.setAttribute("aria-expanded", "true");
    this.#onOpen(); // fresh data now, then every second while open
  }
}

// ---- wiring ---------------------------------------------------------------------------------

/**
 * @param {{term: Terminal, toast: Toast, session(): string, openSession(name: string): void}} page
 *   the terminal (for focus), the toast for errors, the session that launchers open their windows
 *   in, and how to show another session (an agent launched without tmux gets its own)
 */
export function installSetup({ term, toast, session, openSession }) {
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const clock = new ServerClock();
  /** @type {SetupStatus | null} */
  let status = null;
  let retrying = false;
  /** Set when a retry was accepted: the `started` of the run it replaces, until a new one shows. */
  let retryFrom = /** @type {{started: number | null, until: number} | null} */ (null);
  let timer = 0;
  let inFlight = false;
  let pollAgain = false;
  let failures = 0;

  const actions = {
    onRetry: (/** @type {string | null} */ step) => retry(step),
    onLaunch: (/** @type {string} */ agent, /** @type {string} */ title) => launch(agent, title),
  };
  const loading = new LoadingScreen(byId("loading"), clock, {
    ...actions,
    onDismiss: () => {
      writeTabFlag(DISMISSED_KEY);
      term.focus();
    },
    onReady: () => term.focus(),
  });
  const models = new ModelChoices(toast);
  const panel = new SetupPanel(
    /** @type {HTMLButtonElement} */ (byId("setup-badge")),
    byId("setup-panel"),
    clock,
    {
      ...actions,
      onShowLoading: () => loading.show(),
      onOpen: () => {
        poll();
        models.opened();
      },
      onClose: () => term.focus(),
    },
    models,
  );

  setInterval(() => {
    if (loading.visible && loading.hasRunning) loading.tick();
    if (panel.open && panel.hasRunning) panel.tick();
    if (panel.open && document.visibilityState === "visible") models.refreshIfStale();
  }, TICK_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") poll();
  });
  poll();

  async function poll() {
    clearTimeout(timer);
    if (inFlight) {
      pollAgain = true;
      return;
    }
    inFlight = true;
    try {
      const first = status === null;
      status = await fetchSetupStatus();
      failures = 0;
      clock.sync(status.now);
      if (retryFrom && (status.started !== retryFrom.started || status.state !== "failed")) retryFrom = null;
      // Only a first visit during a run gets the loading screen; it never pops up later by itself.
      if (first && inProgress(status) && !readTabFlag(DISMISSED_KEY)) {
        panel.close(false);
        loading.show();
      }
      render();
    } catch {
      failures += 1; // the connection indicator already says when the gateway is unreachable
    } finally {
      inFlight = false;
      timer = setTimeout(poll, pollAgain ? 0 : nextDelay());
      pollAgain = false;
    }
  }

  function nextDelay() {
    if (failures) return Math.min(SLOW_POLL_MS, FAST_POLL_MS * 2 ** failures);
    if (document.visibilityState !== "visible" || !status) return SLOW_POLL_MS;
    // Someone is watching (the loading screen, the open panel): keep what they see current.
    if (awaitingRetry() || inProgress(status) || loading.visible || panel.open) return FAST_POLL_MS;
    return status.state === "pending" ? IDLE_POLL_MS : SLOW_POLL_MS;
  }

  function awaitingRetry() {
    if (retryFrom && performance.now() > retryFrom.until) retryFrom = null;
    return retryFrom !== null;
  }

  function render() {
    if (!status) return;
    const busy = retrying || awaitingRetry();
    const flags = { canRetry: status.state === "failed" && !busy, retrying: busy };
    loading.update(status, flags);
    panel.update(status, flags);
  }

  /** @param {string | null} step */
  async function retry(step) {
    if (retrying) return;
    retrying = true;
    render();
    try {
      await retrySetup(step);
      retryFrom = { started: status?.started ?? null, until: performance.now() + RETRY_GRACE_MS };
    } catch (error) {
      toast.show(/** @type {Error} */ (error).message);
    } finally {
      retrying = false;
      render();
      poll();
    }
  }

  /** @param {string} agent @param {string} title */
  async function launch(agent, title) {
    try {
      const current = session();
      const opened = await openAgentWindow(current, agent);
      panel.close(false);
      if (opened !== current) openSession(opened);
      term.focus();
    } catch (error) {
      toast.show(`Could not start ${title}: ${/** @type {Error} */ (error).message}`);
    }
  }
}
