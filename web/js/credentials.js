// @ts-check
/**
 * "Connect your workspace": the owner's token, pasted once (README, "Connect your workspace").
 *
 * A top-bar badge (green: connected; red: the app needs a token) opens the panel; while the app has
 * no token acting as the owner, the panel opens by itself once per page load. The token goes to
 * PUT /api/credentials and is never shown again: GET /api/credentials says only its state, source
 * and expiry. Hidden in local mode (the CLI uses the user's own ~/.databrickscfg) and with a deploy PAT.
 */

import { ApiError, request } from "./api.js";

const POLL_MS = 30_000;
/** While the app is starting or restoring the kept token: follow it closely. */
const BUSY_POLL_MS = 2_000;
const BUSY = new Set(["starting", "restoring"]);
const ASKING = new Set(["missing", "refused"]);

/**
 * @typedef {{state: string, source: string, expires_at: number | null, renews_at: number | null,
 *            in_use: boolean, reason: string, note: string, kept_across_restarts: boolean,
 *            backup_error: string, lifetime_seconds: number,
 *            owner: {email: string, display_name: string, source: string} | null}} CredentialStatus
 */

/** @param {number} seconds */
function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

const SOURCES = {
  pasted: "minted from the token you pasted",
  renewed: "renewed by the app",
  restored: "restored after a restart",
  DATABRICKS_TOKEN: "the DATABRICKS_TOKEN of the deploy",
};

/**
 * @param {CredentialStatus} status
 * @returns {string[]}
 */
export function describe(status) {
  const lines = [];
  const owner = status.owner;
  if (owner) lines.push(`Owner: ${owner.email} (from ${owner.source}).`);
  const now = Date.now() / 1000;
  if (status.state === "deploy-token") {
    lines.push("Connected with the DATABRICKS_TOKEN of the deploy; the app does not renew it.");
  } else if (status.in_use) {
    const source = SOURCES[/** @type {keyof typeof SOURCES} */ (status.source)] ?? status.source;
    let line = `Connected: a token ${source}`;
    if (status.expires_at) line += `, expires in ${span(status.expires_at - now)}`;
    if (status.renews_at) line += `, renewed in ${span(status.renews_at - now)}`;
    lines.push(`${line}.`);
    lines.push(
      status.kept_across_restarts
        ? "Kept across restarts in a secret only the app can read."
        : `Not kept across restarts${status.backup_error ? `: ${status.backup_error}` : ""}.`,
    );
  } else if (BUSY.has(status.state)) {
    lines.push("Looking for the token kept before the restart…");
  } else {
    lines.push(
      "The terminal's Databricks CLI, the workspace sync and git act as you once you paste a personal " +
        "access token (any lifetime): the app keeps short-lived tokens of its own fresh from it.",
    );
  }
  if (status.note) lines.push(status.note);
  return lines;
}

/**
 * @param {any} data
 * @returns {CredentialStatus}
 */
function normalise(data) {
  const number = (/** @type {any} */ v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const text = (/** @type {any} */ v) => (typeof v === "string" ? v : "");
  const owner = data?.owner && typeof data.owner.email === "string" ? data.owner : null;
  return {
    state: text(data?.state) || "missing",
    source: text(data?.source),
    expires_at: number(data?.expires_at),
    renews_at: number(data?.renews_at),
    in_use: data?.in_use === true,
    reason: text(data?.reason),
    note: text(data?.note),
    kept_across_restarts: data?.kept_across_restarts === true,
    backup_error: text(data?.backup_error),
    lifetime_seconds: number(data?.lifetime_seconds) ?? 0,
    owner: owner ? { email: text(owner.email), display_name: text(owner.display_name), source: text(owner.source) } : null,
  };
}

/**
 * @param {{toast: import("./status.js").Toast, onClose: () => void}} options
 */
export function installCredentials({ toast, onClose }) {
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const badge = /** @type {HTMLButtonElement} */ (byId("credentials-badge"));
  const panel = byId("credentials-panel");
  const statusLine = /** @type {HTMLElement} */ (panel.querySelector(".credentials-status"));
  const errorLine = /** @type {HTMLElement} */ (panel.querySelector(".credentials-error"));
  const form = /** @type {HTMLFormElement} */ (panel.querySelector("form"));
  const input = /** @type {HTMLInputElement} */ (byId("credentials-token"));
  const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
  let opened = false; // opened by itself once per page load, never again after a close
  let timer = 0;

  const setOpen = (/** @type {boolean} */ open) => {
    panel.hidden = !open;
    badge.setAttribute("aria-expanded", String(open));
    if (open) input.focus();
    else onClose();
  };
  badge.addEventListener("click", () => setOpen(panel.hidden !== false));
  /** @type {HTMLButtonElement} */ (panel.querySelector(".credentials-close")).addEventListener("click", () =>
    setOpen(false),
  );
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setOpen(false);
  });

  /** @param {string} message */
  const showError = (message) => {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  };

  /** @param {CredentialStatus} status */
  function render(status) {
    // Local mode, or the deploy's own PAT: nothing for the owner to do here.
    if (status.state === "local" || status.state === "deploy-token") {
      badge.hidden = true;
      panel.hidden = true;
      return;
    }
    badge.hidden = false;
    const level = status.in_use && status.state !== "refused" ? "ok" : BUSY.has(status.state) ? "wait" : "bad";
    badge.dataset.state = level;
    badge.title = level === "ok" ? "Workspace connected" : "Connect your workspace";
    panel.dataset.state = status.state;
    statusLine.textContent = describe(status).join(" ");
    if (ASKING.has(status.state)) showError(status.reason);
    else if (!errorLine.dataset.fromPaste) showError("");
    form.hidden = status.state === "deploy-token";
    if (ASKING.has(status.state) && !opened) {
      opened = true;
      setOpen(true);
    }
  }

  async function poll() {
    clearTimeout(timer);
    let delay = POLL_MS;
    try {
      const status = normalise(await (await request("/api/credentials")).json());
      render(status);
      if (BUSY.has(status.state)) delay = BUSY_POLL_MS;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) delay = POLL_MS * 4; // an older gateway
    }
    timer = setTimeout(poll, delay);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      showError("Paste a personal access token first.");
      return;
    }
    submit.disabled = true;
    try {
      const response = await request("/api/credentials", {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
      });
      input.value = "";
      delete errorLine.dataset.fromPaste;
      render(normalise(await response.json()));
      showError("");
      setOpen(false);
      toast.show("Workspace connected: the CLI, the sync and git act as you");
    } catch (error) {
      errorLine.dataset.fromPaste = "1";
      showError(error instanceof Error ? error.message : String(error));
    } finally {
      submit.disabled = false;
    }
  });
  poll();
}
