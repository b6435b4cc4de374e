// @ts-check
/**
 * Snake on a canvas, to pass the first setup's minutes. Self-contained: it knows nothing of the
 * page; the loading screen feeds it keys (steer/primary) and tells it when to pause.
 *
 * The grid is fixed (GRID × GRID cells) and the canvas is redrawn at whatever size CSS gives it,
 * so the game looks the same on a phone and a desktop.
 */

const GRID = 20;
const START_MS = 160;
const STEP_MS = 6; // faster by this much per food...
const FLOOR_MS = 60; // ...down to this
const SWIPE_PX = 24; // finger travel that counts as a swipe rather than a tap
const HIGH_KEY = "coding-agents.snake.high";
/** At most this many turns wait for the next tick, so quick double taps are not lost. */
const QUEUE_MAX = 2;

/** @typedef {"up" | "down" | "left" | "right"} Direction */

/** @type {Record<Direction, [number, number]>} */
const VECTORS = { up: [0, -1], down: [0, 1], left: [-1, 0], right: [1, 0] };
/** @type {Record<Direction, Direction>} */
const OPPOSITE = { up: "down", down: "up", left: "right", right: "left" };

/**
 * "ready": waiting for the first move; "running"; "paused" (screen hidden or tab in background);
 * "over": hit a wall or itself, waiting for a restart.
 * @typedef {"ready" | "running" | "paused" | "over"} Phase
 */

/**
 * @typedef {{head: [number, number], direction: Direction, length: number, score: number,
 *            high: number, running: boolean, phase: Phase, speedMs: number,
 *            food: [number, number] | null, grid: number}} SnakeState
 */

export class SnakeGame extends EventTarget {
  #canvas;
  #ctx;
  /** @type {[number, number][]} head first */
  #cells = [];
  /** @type {Direction} */
  #direction = "right";
  /** @type {Direction[]} */
  #queue = [];
  /** @type {[number, number] | null} */
  #food = null;
  #score = 0;
  #high = readHigh();
  #speedMs = START_MS;
  /** @type {Phase} */
  #phase = "ready";
  #timer = 0;
  /** @type {{x: number, y: number, id: number, swiped: boolean} | null} */
  #touch = null;

  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    super();
    this.#canvas = canvas;
    this.#ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    this.#reset();
    this.#listenForSwipes();
    // Redraw at the new size; the backing store follows CSS pixels × devicePixelRatio.
    new ResizeObserver(() => this.#draw()).observe(canvas);
  }

  /** @returns {SnakeState} */
  get state() {
    const [x, y] = this.#cells[0];
    return {
      head: [x, y],
      direction: this.#direction,
      length: this.#cells.length,
      score: this.#score,
      high: this.#high,
      running: this.#phase === "running",
      phase: this.#phase,
      speedMs: this.#speedMs,
      food: this.#food ? [this.#food[0], this.#food[1]] : null,
      grid: GRID,
    };
  }

  /**
   * Turn (or start moving, when waiting). A turn straight back into the neck is ignored: the
   * snake would die on the spot.
   * @param {Direction} direction
   */
  steer(direction) {
    if (this.#phase === "over") return;
    const last = this.#queue.at(-1) ?? this.#direction;
    if (direction !== last && direction !== OPPOSITE[last] && this.#queue.length < QUEUE_MAX) {
      this.#queue.push(direction);
    }
    if (this.#phase !== "running") this.#run();
  }

  /** Space, Enter or a tap: start when waiting, restart after a game over, resume when paused. */
  primary() {
    if (this.#phase === "over") this.#reset();
    if (this.#phase !== "running") this.#run();
  }

  /** Stops the clock (the screen was hidden); the next key or tap carries on. */
  pause() {
    if (this.#phase !== "running") return;
    clearTimeout(this.#timer);
    this.#setPhase("paused");
  }

  /**
   * Puts the food on a given cell: for tests, which cannot wait for a random one to fall in line.
   * @param {[number, number]} cell
   */
  placeFood(cell) {
    const [x, y] = cell;
    if (!inside(x, y) || this.#occupied(x, y)) throw new Error(`cell ${x},${y} is not free`);
    this.#food = [x, y];
    this.#draw();
  }

  #reset() {
    clearTimeout(this.#timer);
    const middle = Math.floor(GRID / 2);
    this.#cells = [
      [middle, middle],
      [middle - 1, middle],
      [middle - 2, middle],
    ];
    this.#direction = "right";
    this.#queue = [];
    this.#score = 0;
    this.#speedMs = START_MS;
    this.#food = this.#randomFreeCell();
    this.#setPhase("ready");
  }

  #run() {
    this.#setPhase("running");
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), this.#speedMs);
  }

  #tick() {
    if (this.#phase !== "running") return;
    this.#direction = this.#queue.shift() ?? this.#direction;
    const [dx, dy] = VECTORS[this.#direction];
    const [hx, hy] = this.#cells[0];
    const next = /** @type {[number, number]} */ ([hx + dx, hy + dy]);
    const eats = this.#food !== null && next[0] === this.#food[0] && next[1] === this.#food[1];
    // The tail moves out of the way this tick unless the snake grows, so it is not in the way.
    const body = eats ? this.#cells : this.#cells.slice(0, -1);
    if (!inside(...next) || body.some(([x, y]) => x === next[0] && y === next[1])) {
      this.#gameOver();
      return;
    }
    this.#cells = [next, ...body];
    if (eats) {
      this.#score += 1;
      this.#speedMs = Math.max(FLOOR_MS, this.#speedMs - STEP_MS);
      if (this.#score > this.#high) {
        this.#high = this.#score;
        writeHigh(this.#high);
      }
      this.#food = this.#randomFreeCell();
      this.dispatchEvent(new Event("score"));
      if (this.#food === null) {
        this.#gameOver(); // the board is full: nothing left to eat
        return;
      }
    }
    this.#draw();
    this.#timer = setTimeout(() => this.#tick(), this.#speedMs);
  }

  #gameOver() {
    clearTimeout(this.#timer);
    this.#setPhase("over");
  }

  /** @param {Phase} phase */
  #setPhase(phase) {
    this.#phase = phase;
    this.#draw();
    this.dispatchEvent(new Event("phase"));
  }

  /** @returns {[number, number] | null} null when the snake fills the board */
  #randomFreeCell() {
    const free = [];
    for (let y = 0; y < GRID; y++) {
      for (let x = 0; x < GRID; x++) if (!this.#occupied(x, y)) free.push([x, y]);
    }
    return free.length ? /** @type {[number, number]} */ (free[Math.floor(Math.random() * free.length)]) : null;
  }

  /** @param {number} x @param {number} y */
  #occupied(x, y) {
    return this.#cells.some(([cx, cy]) => cx === x && cy === y);
  }

  /**
   * Swipes are read from pointer events (touch, pen and mouse drags alike). A swipe turns as soon
   * as the finger has travelled far enough, and each further stretch turns again, so a player can
   * zig-zag without lifting; a touch that never travelled is a tap.
   */
  #listenForSwipes() {
    const canvas = this.#canvas;
    canvas.addEventListener("pointerdown", (event) => {
      this.#touch = { x: event.clientX, y: event.clientY, id: event.pointerId, swiped: false };
      canvas.setPointerCapture?.(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      const touch = this.#touch;
      if (!touch || touch.id !== event.pointerId) return;
      const dx = event.clientX - touch.x;
      const dy = event.clientY - touch.y;
      if (Math.max(Math.abs(dx), Math.abs(dy)) < SWIPE_PX) return;
      this.steer(Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? "right" : "left") : dy > 0 ? "down" : "up");
      Object.assign(touch, { x: event.clientX, y: event.clientY, swiped: true });
    });
    const end = (/** @type {PointerEvent} */ event) => {
      const touch = this.#touch;
      if (!touch || touch.id !== event.pointerId) return;
      this.#touch = null;
      if (!touch.swiped && event.type === "pointerup") this.primary();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  #draw() {
    const canvas = this.#canvas;
    const ctx = this.#ctx;
    const ratio = window.devicePixelRatio || 1;
    const size = Math.round(canvas.clientWidth * ratio);
    if (size === 0) return; // hidden: drawn when it is shown (the ResizeObserver fires then)
    if (canvas.width !== size || canvas.height !== size) {
      canvas.width = size;
      canvas.height = size;
    }
    const colours = palette(canvas);
    const cell = size / GRID;
    ctx.fillStyle = colours.board;
    ctx.fillRect(0, 0, size, size);

    // A faint checkerboard makes the grid (and so the snake's speed) readable.
    ctx.fillStyle = colours.grid;
    for (let y = 0; y < GRID; y++) {
      for (let x = (y % 2); x < GRID; x += 2) ctx.fillRect(x * cell, y * cell, cell, cell);
    }

    if (this.#food) {
      ctx.fillStyle = colours.food;
      ctx.beginPath();
      ctx.arc((this.#food[0] + 0.5) * cell, (this.#food[1] + 0.5) * cell, cell * 0.38, 0, Math.PI * 2);
      ctx.fill();
    }

    const gap = Math.max(1, cell * 0.08);
    this.#cells.forEach(([x, y], index) => {
      ctx.fillStyle = index === 0 ? colours.head : colours.body;
      ctx.fillRect(x * cell + gap, y * cell + gap, cell - 2 * gap, cell - 2 * gap);
    });

    const banner = { ready: "Arrow keys or swipe to start", paused: "Paused", over: "Game over", running: "" }[
      this.#phase
    ];
    if (banner) {
      ctx.fillStyle = "rgb(0 0 0 / 45%)";
      ctx.fillRect(0, 0, size, size);
      ctx.fillStyle = colours.text;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = `600 ${Math.round(size / 16)}px system-ui, sans-serif`;
      ctx.fillText(banner, size / 2, size / 2, size * 0.9);
    }
  }
}

/** @param {number} x @param {number} y */
function inside(x, y) {
  return x >= 0 && y >= 0 && x < GRID && y < GRID;
}

/**
 * Colours from the page's CSS variables, so the game follows the theme in style.css.
 * @param {HTMLElement} element
 */
function palette(element) {
  const style = getComputedStyle(element);
  const get = (/** @type {string} */ name, /** @type {string} */ fallback) =>
    style.getPropertyValue(name).trim() || fallback;
  return {
    board: get("--bar", "#0f1115"),
    grid: get("--snake-grid", "#14171c"),
    body: get("--ok", "#98c379"),
    head: get("--snake-head", "#b5e08f"),
    food: get("--bad", "#e06c75"),
    text: get("--text", "#d4d7dd"),
  };
}

/** localStorage throws in some private-browsing modes; the high score is then only per game. */
function readHigh() {
  try {
    return Number.parseInt(localStorage.getItem(HIGH_KEY) ?? "0", 10) || 0;
  } catch {
    return 0;
  }
}

/** @param {number} value */
function writeHigh(value) {
  try {
    localStorage.setItem(HIGH_KEY, String(value));
  } catch {
    // not remembered
  }
}
