// @ts-check
/**
 * The setup's badge in the top bar and the panel it opens: the step list with a launcher and a
 * model choice for every installed agent.
 */

import { button, element, find, setText } from "./dom.js";
import { inProgress, isGood, progress, summaryText } from "./setupstatus.js";
import { StepsView } from "./setupsteps.js";
import { Popover } from "./popover.js";

/**
 * @typedef {import("./setupstatus.js").SetupStatus} SetupStatus
 * @typedef {import("./clock.js").ServerClock} ServerClock
 * @typedef {import("./setupsteps.js").StepActions} StepActions
 * @typedef {import("./setupsteps.js").RetryState} RetryState
 * @typedef {import("./models.js").ModelChoices} ModelChoices
 */

export class SetupPanel {
  #badge;
  #label;
  #popover;
  #steps;
  #fullScreen;

  /**
   * @param {HTMLButtonElement} badge
   * @param {HTMLElement} panel
   * @param {ServerClock} clock
   * @param {StepActions & {onShowLoading(): void, onOpen(): void, onClose(): void}} actions
   *   onOpen: fresh data now, then every second while open
   * @param {ModelChoices} models the model select beside each launcher
   */
  constructor(badge, panel, clock, actions, models) {
    this.#badge = badge;
    this.#label = find(badge, ".label");
    this.#fullScreen = button("panel-link", "Full screen");
    this.#fullScreen.title = "Show the loading screen (and its game) again";
    this.#popover = new Popover(badge, panel, {
      title: "Setup",
      headingId: "setup-panel-title",
      closeLabel: "Close the setup panel",
      controls: [this.#fullScreen],
      onOpen: actions.onOpen,
      onClose: actions.onClose,
    });
    const body = element("div");
    panel.append(body);
    this.#steps = new StepsView(body, clock, actions, models);
    this.#fullScreen.addEventListener("click", () => {
      this.close(false);
      actions.onShowLoading();
    });
  }

  get open() {
    return this.#popover.open;
  }

  /** @param {boolean} [refocus] give the terminal its focus back (not when a click moves it anyway) */
  close(refocus = true) {
    this.#popover.close(refocus);
  }

  get hasRunning() {
    return this.#steps.hasRunning;
  }

  /**
   * @param {SetupStatus} status
   * @param {RetryState} retry
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
}
