// @ts-check
/**
 * The workspace sync of the git repositories under ~/projects, as the top bar shows it: a small
 * badge (green: all synced; amber: syncing or commits pending; red: an error) that opens a popover
 * with one row per repository. Hidden while there is nothing to show: no workspace, no repository.
 *
 * Data: GET /api/sync (the sync program's status file, with the server's `now`), polled every 5 s
 * while the page is visible and not at all while it is hidden. Keys this page does not know are
 * ignored. "synced 2 min ago" is counted on the server's clock when the answer carries `now`.
 */

import { ApiError, request } from "./api.js";
import { ServerClock } from "./clock.js";
import { byId, element, find, setText, showText } from "./dom.js";
import { Popover } from "./popover.js";
import { Poller } from "./poller.js";
import { RestoreNotice, normaliseRestore, restoring } from "./restore.js";

const POLL_MS = 5_000;
/** While projects are being restored: the notice above the terminal follows it closely. */
const RESTORE_POLL_MS = 1_000;
/** Failing answers back off (doubling) up to this. */
const MAX_BACKOFF_MS = 60_000;
/** A gateway without the route (404): nothing to show, only look again now and then. */
const NO_ROUTE_MS = 60_000;
const SHORT_COMMIT = 7;
/** Large files listed by name in a row; the rest are counted (all are in the tooltip). */
const SKIPPED_SHOWN = 3;

/** @type {Record<string, string>} */
const REPO_LABELS = {
  synced: "synced",
  pending: "pending",
  syncing: "syncing",
  error: "error",
  empty: "no commits",
  removed: "removed",
};
/** @type {Record<string, string>} */
const BADGE_LABELS = { synced: "synced", syncing: "syncing", error: "sync error" };

/**
 * @typedef {{name: string, state: string, last_synced_commit: string | null,
 *            last_synced_at: number | null, pending: number, last_error: string,
 *            skipped_large: string[]}} RepoSync
 * @typedef {{state: string, reason: string, now: number | null, repos: RepoSync[],
 *            restore: import("./restore.js").Restore | null}} SyncStatus
 * @typedef {"synced" | "syncing" | "error" | "off"} Level
 */

/** @returns {Promise<SyncStatus>} */
export async function fetchSyncStatus() {
  return normalise(await (await request("/api/sync")).json());
}

/**
 * @param {any} data
 * @returns {SyncStatus}
 */
function normalise(data) {
  const repos = Array.isArray(data?.repos) ? data.repos : [];
  const number = (/** @type {any} */ value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
  return {
    state: String(data?.state ?? "idle"),
    reason: typeof data?.reason === "string" ? data.reason : "",
    now: number(data?.now),
    restore: normaliseRestore(data?.restore),
    repos: repos.map((/** @type {any} */ repo) => ({
      name: String(repo?.name ?? "?"),
      state: String(repo?.state ?? "pending"),
      last_synced_commit: typeof repo?.last_synced_commit === "string" ? repo.last_synced_commit : null,
      last_synced_at: number(repo?.last_synced_at),
      pending: number(repo?.pending) ?? 0,
      last_error: typeof repo?.last_error === "string" ? repo.last_error : "",
      skipped_large: Array.isArray(repo?.skipped_large) ? repo.skipped_large.map(String) : [],
    })),
  };
}

/**
 * What the badge shows for a status: its colour and a one-line description.
 * @param {SyncStatus} status
 * @returns {{level: Level, text: string}}
 */
export function summarise(status) {
  const { repos } = status;
  const count = (/** @type {number} */ n) => `${n} ${n === 1 ? "repository" : "repositories"}`;
  if (status.state === "no workspace") return { level: "off", text: "no workspace configured" };
  const failed = repos.filter((repo) => repo.state === "error").length;
  const busy = repos.filter((repo) => repo.state === "syncing" || repo.state === "pending" || repo.pending > 0);
  if (failed || status.state === "error") {
    const what = failed ? `${failed} of ${count(repos.length)} failed` : "failed";
    return { level: "error", text: status.reason ? `${what}: ${status.reason}` : what };
  }
  if (busy.length || status.state === "syncing") {
    const commits = busy.reduce((sum, repo) => sum + repo.pending, 0);
    const pending = commits ? ` (${commits} ${commits === 1 ? "commit" : "commits"} to go)` : "";
    return { level: "syncing", text: `syncing ${count(busy.length)}${pending}` };
  }
  if (!repos.length) return { level: "off", text: "no repositories under ~/projects" };
  return { level: "synced", text: `${count(repos.length)} synced` };
}

/** @param {number} seconds how long ago; "just now" under 10 s (and for a clock a little ahead) */
export function ago(seconds) {
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/**
 * @typedef {{item: HTMLLIElement, name: HTMLElement, badge: HTMLElement, meta: HTMLElement,
 *            error: HTMLElement, skipped: HTMLElement}} RepoRow
 */

/** The badge in the top bar and its popover; rows are kept by repository name. */
class SyncView {
  #badge;
  #label;
  #popover;
  #summary;
  #list;
  #empty;
  /** @type {Map<string, RepoRow>} */
  #rows = new Map();
  /** "synced 2 min ago" counts on the server's clock, from the last answer's `now`. */
  #clock = new ServerClock();

  /**
   * @param {HTMLButtonElement} badge
   * @param {HTMLElement} popover
   * @param {{onOpen(): void, onClose(): void}} actions onClose: closed by its button or Escape
   */
  constructor(badge, popover, actions) {
    this.#badge = badge;
    this.#label = find(badge, ".label");
    this.#popover = new Popover(badge, popover, {
      title: "Workspace sync",
      headingId: "sync-popover-title",
      closeLabel: "Close the sync details",
      ...actions,
    });
    this.#summary = element("p", "sync-summary");
    this.#summary.setAttribute("aria-live", "polite");
    this.#list = element("ul", "sync-repos");
    this.#empty = element("p", "sync-empty", "No git repositories under ~/projects yet.");
    this.#empty.hidden = true;
    popover.append(this.#summary, this.#list, this.#empty);
  }

  /** @param {SyncStatus | null} status null: the gateway has no sync to report */
  update(status) {
    const { level, text } = status ? summarise(status) : { level: /** @type {Level} */ ("off"), text: "" };
    this.#badge.dataset.state = level;
    this.#badge.hidden = level === "off";
    if (this.#badge.hidden) this.#popover.close(false);
    const label = BADGE_LABELS[level] ?? "sync";
    setText(this.#label, label);
    this.#badge.title = `Workspace sync of ~/projects: ${text}`;
    if (!status) return;
    if (status.now !== null) this.#clock.sync(status.now);
    showText(this.#summary, text.charAt(0).toUpperCase() + text.slice(1));
    this.#summary.dataset.state = level;
    this.#empty.hidden = status.repos.length > 0;

    const names = new Set(status.repos.map((repo) => repo.name));
    for (const [name, row] of this.#rows) {
      if (!names.has(name)) {
        row.item.remove();
        this.#rows.delete(name);
      }
    }
    for (const repo of status.repos) {
      let row = this.#rows.get(repo.name);
      if (!row) {
        row = createRow(repo.name);
        this.#rows.set(repo.name, row);
      }
      this.#fill(row, repo);
    }
    const order = status.repos.map((repo) => /** @type {RepoRow} */ (this.#rows.get(repo.name)).item);
    if (order.some((item, index) => this.#list.children[index] !== item)) this.#list.append(...order);
  }

  /**
   * @param {RepoRow} row
   * @param {RepoSync} repo
   */
  #fill(row, repo) {
    row.item.dataset.state = repo.state;
    showText(row.name, repo.name);
    showText(row.badge, REPO_LABELS[repo.state] ?? repo.state);
    const meta = [];
    if (repo.last_synced_commit) meta.push(repo.last_synced_commit.slice(0, SHORT_COMMIT));
    if (repo.last_synced_at !== null) {
      const seconds = this.#clock.now() - repo.last_synced_at;
      meta.push(`synced ${ago(seconds)}`);
      row.meta.title = `Last synced ${new Date(repo.last_synced_at * 1000).toLocaleString()}`;
    } else {
      meta.push("never synced");
      row.meta.removeAttribute("title");
    }
    if (repo.pending > 0) meta.push(`${repo.pending} pending`);
    showText(row.meta, meta.join(" · "));
    showText(row.error, repo.last_error);
    const skipped = repo.skipped_large;
    const more = skipped.length > SKIPPED_SHOWN ? ` and ${skipped.length - SKIPPED_SHOWN} more` : "";
    showText(
      row.skipped,
      skipped.length ? `Not uploaded (over 10 MB): ${skipped.slice(0, SKIPPED_SHOWN).join(", ")}${more}` : "",
    );
    row.skipped.title = skipped.join("\n");
  }
}

/** @param {string} name @returns {RepoRow} */
function createRow(name) {
  const item = /** @type {HTMLLIElement} */ (element("li", "sync-repo"));
  item.dataset.repo = name;
  const head = element("div", "sync-repo-head");
  const title = element("span", "sync-repo-name");
  const badge = element("span", "sync-repo-badge");
  head.append(title, badge);
  const meta = element("p", "sync-repo-meta");
  const error = element("p", "sync-repo-error");
  const skipped = element("p", "sync-repo-skipped");
  item.append(head, meta, error, skipped);
  return { item, name: title, badge, meta, error, skipped };
}

/**
 * Starts the badge and its polling.
 * @param {{term: {focus(): void}}} page the terminal, which gets the focus back when the popover closes
 */
export function installSync({ term }) {
  const view = new SyncView(/** @type {HTMLButtonElement} */ (byId("sync-badge")), byId("sync-popover"), {
    onOpen: () => poller.poll(), // fresh rows on opening, not up to 5 s old ones
    onClose: () => term.focus(),
  });
  const notice = new RestoreNotice(byId("restore-notice"));
  // Hidden: no polling at all until the page is seen again.
  const poller = new Poller(pollOnce, {
    backoff: (failures) => Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** failures),
    pauseWhenHidden: true,
  });
  poller.poll();

  /** @returns {Promise<number>} the delay before the next poll */
  async function pollOnce() {
    let status;
    try {
      status = await fetchSyncStatus();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error; // backs off, keeps what is shown
      view.update(null); // a gateway without /api/sync
      return NO_ROUTE_MS;
    }
    view.update(status);
    notice.update(status.restore);
    return restoring(status.restore) ? RESTORE_POLL_MS : POLL_MS;
  }
}
