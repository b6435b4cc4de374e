// @ts-check
/**
 * The loading screen of a first visit during setup: the snake game beside the step list. The
 * terminal connects behind it; the screen only keeps keys and focus away from the terminal until
 * the user goes to it (button or Escape), or a short "all set" after setup is done.
 */

import { find, setText } from "./dom.js";
import { SnakeGame } from "./snake.js";
import { StepsView } from "./setupsteps.js";

/** How long "all set" shows before the loading screen gives way to the terminal. */
const READY_MS = 1_200;
/** What sits behind the loading screen and must take neither focus nor keys while it shows. */
const BEHIND_LOADING = ["topbar", "terminal", "search", "session-overlay", "keybar", "setup-panel", "sync-popover"];

/** @type {Record<string, string>} */
const HEADLINES = {
  pending: "Getting ready…",
  running: "Installing your coding agents…",
  done: "All set: opening the terminal",
  failed: "Setup finished with problems",
};
/**
 * Game keys by KeyboardEvent.code, so WASD sits under the same fingers on any keyboard layout.
 * @type {Record<string, import("./snake.js").Direction>}
 */
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
 * @typedef {import("./setupstatus.js").SetupStatus} SetupStatus
 * @typedef {import("./clock.js").ServerClock} ServerClock
 * @typedef {import("./setupsteps.js").StepActions} StepActions
 * @typedef {import("./setupsteps.js").RetryState} RetryState
 */

export class LoadingScreen {
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
    this.#root = root;
    this.#title = find(root, ".loading-title");
    this.#dismiss = find(root, ".loading-dismiss");
    this.#canvas = /** @type {HTMLCanvasElement} */ (find(root, "canvas"));
    this.#score = find(root, ".snake-score");
    this.#high = find(root, ".snake-high");
    this.#hint = find(root, ".snake-hint");
    this.#onDismiss = actions.onDismiss;
    this.#onReady = actions.onReady;
    this.#steps = new StepsView(find(root, ".loading-steps"), clock, {
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
   * @param {RetryState} retry
   */
  update(status, retry) {
    this.#root.dataset.state = status.state;
    setText(this.#title, HEADLINES[status.state] ?? HEADLINES.pending);
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
    const direction = GAME_KEYS[event.code];
    if (direction) {
      event.preventDefault(); // no page scrolling on arrows
      this.#snake?.steer(direction);
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
