// @ts-check
/**
 * The notice above the terminal while projects come back from the workspace after a restart
 * ("Restoring 3 projects from /Workspace/Users/x/projects… ~/projects fills in a moment"), and
 * afterwards what needs reading: a project restored beside a folder of the same name, history kept on
 * a branch, a failure. Fed by sync.js with the `restore` part of GET /api/sync.
 */

/**
 * @typedef {{name: string, outcome: string, path: string, message: string}} RestoreItem
 * @typedef {{phase: string, remote_root: string, total: number, done: number,
 *            started_at: number | null, reason: string, items: RestoreItem[]}} Restore
 */

/** Outcomes worth a line once the restore is over: the user's folder was not simply filled in. */
const NOTEWORTHY = new Set(["beside", "as a branch", "failed"]);
const DISMISSED_KEY = "coding-agents.restore-dismissed";

/** @param {any} data @returns {Restore | null} */
export function normaliseRestore(data) {
  if (!data || typeof data !== "object" || typeof data.phase !== "string") return null;
  const items = Array.isArray(data.items) ? data.items : [];
  const text = (/** @type {any} */ value) => (typeof value === "string" ? value : "");
  return {
    phase: data.phase,
    remote_root: text(data.remote_root),
    total: Number(data.total) || 0,
    done: Number(data.done) || 0,
    started_at: typeof data.started_at === "number" ? data.started_at : null,
    reason: text(data.reason),
    items: items.map((/** @type {any} */ item) => ({
      name: String(item?.name ?? "?"),
      outcome: text(item?.outcome),
      path: text(item?.path),
      message: text(item?.message),
    })),
  };
}

/** @param {Restore | null} restore true while the page should look more often */
export function restoring(restore) {
  return restore !== null && restore.phase !== "done";
}

/**
 * The headline for a restore, or "" when there is nothing to say.
 * @param {Restore} restore
 */
export function headline(restore) {
  const where = restore.remote_root ? ` from /Workspace${restore.remote_root}` : " from the workspace";
  const projects = (/** @type {number} */ n) => `${n} ${n === 1 ? "project" : "projects"}`;
  if (restore.phase === "checking") {
    const stuck = restore.reason ? ` (${restore.reason}; retrying)` : "";
    return `Looking for projects to restore${where}…${stuck}`;
  }
  if (restore.phase === "restoring") {
    const progress = restore.done ? ` (${restore.done} of ${restore.total} done)` : "";
    return `Restoring ${projects(restore.total)}${where}… ~/projects fills in a moment${progress}`;
  }
  const noteworthy = restore.items.filter((item) => NOTEWORTHY.has(item.outcome));
  return noteworthy.length ? `Restored ${projects(restore.items.length)}${where}:` : "";
}

export class RestoreNotice {
  #root;
  #text;
  #list;

  /** @param {HTMLElement} root */
  constructor(root) {
    this.#root = root;
    this.#text = /** @type {HTMLElement} */ (root.querySelector(".restore-text"));
    this.#list = /** @type {HTMLElement} */ (root.querySelector(".restore-items"));
    const dismiss = /** @type {HTMLElement} */ (root.querySelector(".restore-dismiss"));
    dismiss.addEventListener("click", () => {
      sessionStorage.setItem(DISMISSED_KEY, root.dataset.started ?? "");
      root.hidden = true;
    });
  }

  /** @param {Restore | null} restore */
  update(restore) {
    const text = restore ? headline(restore) : "";
    const started = String(restore?.started_at ?? "");
    const dismissed = restore?.phase === "done" && sessionStorage.getItem(DISMISSED_KEY) === started;
    this.#root.hidden = !text || dismissed;
    if (this.#root.hidden || !restore) return;
    this.#root.dataset.phase = restore.phase;
    this.#root.dataset.started = started;
    if (this.#text.textContent !== text) this.#text.textContent = text;
    const lines = restore.items.filter((item) => NOTEWORTHY.has(item.outcome)).map((item) => item.message || item.name);
    const current = [...this.#list.children].map((li) => li.textContent);
    if (current.join("\n") !== lines.join("\n")) {
      this.#list.replaceChildren(
        ...lines.map((line) => {
          const li = document.createElement("li");
          li.textContent = line;
          return li;
        }),
      );
    }
    this.#list.hidden = lines.length === 0;
  }
}
