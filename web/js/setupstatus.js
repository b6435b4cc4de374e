// @ts-check
/**
 * The first-run setup's status as the page reads it: GET /api/setup-status (normalised, so the
 * views need no checks), the retry and launch calls, and what the views derive from a status.
 */

import { request } from "./api.js";

/**
 * @typedef {{id: string, title: string, kind: string, state: string, after: string[],
 *            version: string, agent: boolean, started: number | null, ended: number | null,
 *            exit_code: number | null, reason: string, log_tail: string[]}} SetupStep
 * @typedef {{state: string, started: number | null, finished: number | null,
 *            runner_pid: number | null, now: number, reason: string, steps: SetupStep[]}} SetupStatus
 * @typedef {import("./clock.js").ServerClock} ServerClock
 */

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

/** @param {SetupStep} step @param {ServerClock} clock @returns {number | null} */
export function elapsed(step, clock) {
  if (step.started === null) return null;
  const end = step.ended ?? (step.state === "running" ? clock.now() : null);
  return end === null ? null : Math.max(0, end - step.started);
}

/** @param {number} seconds */
export function formatSeconds(seconds) {
  const whole = Math.floor(seconds);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
}

export const isGood = (/** @type {string} */ state) => state === "ok" || state === "skipped";
const isFinished = (/** @type {string} */ state) => isGood(state) || state === "failed";

/** @param {SetupStatus} status */
export function progress(status) {
  const total = status.steps.length;
  const finished = status.steps.filter((step) => isFinished(step.state)).length;
  const failed = status.steps.filter((step) => step.state === "failed").length;
  return { total, finished, failed };
}

/** @param {SetupStatus} status */
export function summaryText(status) {
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
export const inProgress = (/** @type {SetupStatus} */ status) =>
  status.state === "running" || (status.state === "pending" && status.steps.length > 0);

