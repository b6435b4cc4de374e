// @ts-check
/**
 * The first-run setup, as the page shows it: a loading screen (snake beside the step list) while
 * setup runs on a first visit (loading.js), a compact badge and panel in the top bar afterwards
 * (setuppanel.js), and a launcher for every agent as soon as it is installed (in the panel with a
 * choice of model: models.js).
 *
 * The terminal never waits for any of this: it connects behind the loading screen, which only
 * keeps keys and focus away from it until the user goes to it (button or Escape).
 *
 * Data: GET /api/setup-status (setupstatus.js), polled every second while setup runs and every 15 s
 * after. Elapsed times come from the server's clock (`now` in each answer) advanced by the page's
 * monotonic clock between answers, so a browser with a wrong wall clock still counts right.
 */

import { ServerClock } from "./clock.js";
import { byId, readTabFlag, writeTabFlag } from "./dom.js";
import { LoadingScreen } from "./loading.js";
import { ModelChoices } from "./models.js";
import { Poller } from "./poller.js";
import { SetupPanel } from "./setuppanel.js";
import { fetchSetupStatus, inProgress, openAgentWindow, retrySetup } from "./setupstatus.js";

const FAST_POLL_MS = 1_000;
/** Nothing to follow (no run has started, or setup is off): look now and then for a run. */
const IDLE_POLL_MS = 5_000;
/** Finished: only a retry (maybe from another tab) or a restart of the app changes anything. */
const SLOW_POLL_MS = 15_000;
/** After a retry was accepted, the old "failed" status may still be read until the runner writes. */
const RETRY_GRACE_MS = 15_000;
const TICK_MS = 250;
const DISMISSED_KEY = "coding-agents.loading.dismissed";

/**
 * @typedef {import("./setupstatus.js").SetupStatus} SetupStatus
 * @typedef {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} Terminal
 * @typedef {import("./status.js").Toast} Toast
 */

/**
 * @param {{term: Terminal, toast: Toast, session(): string, openSession(name: string): void}} page
 *   the terminal (for focus), the toast for errors, the session that launchers open their windows
 *   in, and how to show another session (an agent launched without tmux gets its own)
 */
export function installSetup({ term, toast, session, openSession }) {
  const clock = new ServerClock();
  /** @type {SetupStatus | null} */
  let status = null;
  let retrying = false;
  /** Set when a retry was accepted: the `started` of the run it replaces, until a new one shows. */
  let retryFrom = /** @type {{started: number | null, until: number} | null} */ (null);

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
  const poller = new Poller(pollOnce, { backoff: (failures) => Math.min(SLOW_POLL_MS, FAST_POLL_MS * 2 ** failures) });
  const panel = new SetupPanel(
    /** @type {HTMLButtonElement} */ (byId("setup-badge")),
    byId("setup-panel"),
    clock,
    {
      ...actions,
      onShowLoading: () => loading.show(),
      onOpen: () => {
        poller.poll();
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
  poller.poll();

  /** @returns {Promise<number>} the delay before the next poll */
  async function pollOnce() {
    const first = status === null;
    status = await fetchSetupStatus();
    clock.sync(status.now);
    if (retryFrom && (status.started !== retryFrom.started || status.state !== "failed")) retryFrom = null;
    // Only a first visit during a run gets the loading screen; it never pops up later by itself.
    if (first && inProgress(status) && !readTabFlag(DISMISSED_KEY)) {
      panel.close(false);
      loading.show();
    }
    render();
    return nextDelay(status);
  }

  /** @param {SetupStatus} current */
  function nextDelay(current) {
    if (document.visibilityState !== "visible") return SLOW_POLL_MS;
    // Someone is watching (the loading screen, the open panel): keep what they see current.
    if (awaitingRetry() || inProgress(current) || loading.visible || panel.open) return FAST_POLL_MS;
    return current.state === "pending" ? IDLE_POLL_MS : SLOW_POLL_MS;
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
      poller.poll();
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
