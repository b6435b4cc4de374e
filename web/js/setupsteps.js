// @ts-check
/**
 * The setup's step list, shared by the loading screen and the panel: an overall bar, a launcher
 * for every installed agent (with its model select in the panel) and one row per step.
 */

import { button, element, setText } from "./dom.js";
import { elapsed, formatSeconds, isGood, progress, summaryText } from "./setupstatus.js";

/** @type {Record<string, string>} */
const STATE_LABELS = { pending: "waiting", running: "running", ok: "done", failed: "failed", skipped: "skipped" };

/**
 * @typedef {import("./setupstatus.js").SetupStep} SetupStep
 * @typedef {import("./setupstatus.js").SetupStatus} SetupStatus
 * @typedef {import("./clock.js").ServerClock} ServerClock
 * @typedef {import("./models.js").ModelChoices} ModelChoices
 * @typedef {{onRetry(step: string | null): void, onLaunch(agent: string, title: string): void}} StepActions
 *   onRetry: one step, or (null) every failed one
 * @typedef {{canRetry: boolean, retrying: boolean}} RetryState
 */

/**
 * @typedef {{item: HTMLLIElement, title: HTMLElement, version: HTMLElement, badge: HTMLElement,
 *            time: HTMLElement, reason: HTMLElement, last: HTMLElement, actions: HTMLElement,
 *            log: HTMLDetailsElement, logText: HTMLElement, retry: HTMLButtonElement}} StepRow
 */

/**
 * Overall bar, launchers and one row per step. Rows are kept by step id and updated in place, so
 * an expanded log or a focused Retry button survives the next poll.
 */
export class StepsView {
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
    this.#runRetry = button("step-retry run-retry", "Retry");
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
      const pressed = /** @type {HTMLElement} */ (event.target).closest("button");
      if (!pressed || pressed.disabled) return;
      if (pressed === this.#runRetry) actions.onRetry(null);
      else if (pressed.classList.contains("step-retry")) actions.onRetry(pressed.closest("li")?.dataset.step ?? null);
      else if (pressed.dataset.agent) actions.onLaunch(pressed.dataset.agent, pressed.dataset.title ?? "");
    });
  }

  /**
   * @param {SetupStatus} status
   * @param {RetryState} retry
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
      const launcher = button("launcher");
      launcher.dataset.agent = step.id;
      launcher.dataset.title = step.title;
      launcher.title = `Start ${step.title} in a new window of this session`;
      launcher.append(element("span", "launcher-icon", "▶"), ` ${step.title}`);
      /** @type {HTMLElement} */
      let item = launcher;
      if (this.#models) {
        item = element("div", "launcher-row");
        item.append(launcher, this.#models.slot(step.id, step.title));
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
  const retry = button("step-retry", "Retry");
  actions.append(log, retry);
  item.append(head, bar, reason, last, actions);
  return { item, title, version, badge, time, reason, last, actions, log, logText, retry };
}

/**
 * @param {StepRow} row
 * @param {SetupStep} step
 * @param {RetryState} retry
 */
function fillRow(row, step, retry) {
  row.item.dataset.state = step.state;
  setText(row.title, step.title);
  setText(row.version, step.version);
  setText(row.badge, STATE_LABELS[step.state] ?? step.state);
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
  row.actions.hidden = row.log.hidden && row.retry.hidden;
}
