// @ts-check
/**
 * The gateway's session REST API. Requests rely on the auth cookie, which fetch() sends by
 * default for same-origin URLs.
 */

/** A failed API call; `message` is the gateway's `{"error"}` text, safe to show the user. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the request never got an answer
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/**
 * A gateway API call: an ApiError with the gateway's own words for anything but a 2xx answer.
 * Never from the browser cache: every answer describes the present.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export async function request(path, init = {}) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", ...init });
  } catch {
    throw new ApiError(0, "the gateway is not reachable");
  }
  if (!response.ok) {
    throw new ApiError(response.status, await errorText(response));
  }
  return response;
}

/**
 * The gateway answers errors with `{"error": text}`; anything else (a proxy's HTML page) gets a
 * generic message rather than markup in a toast.
 * @param {Response} response
 */
export async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body?.error === "string") return body.error;
  } catch {
    // not JSON
  }
  return `request failed (HTTP ${response.status})`;
}

/**
 * @typedef {import("./memory.js").MemoryInfo} MemoryInfo
 * @typedef {{name: string, created: number, clients: number, last_activity: number,
 *            command: string, windows: number, degraded: boolean, bells?: number,
 *            output_at?: number}} SessionInfo
 *   degraded: a shell on the gateway's own PTY (no tmux), which ends when the gateway restarts;
 *   bells: bells rung so far; output_at: the current window's last output (epoch seconds)
 * @typedef {{sessions: SessionInfo[], terminal: string, terminalReason: string,
 *            memory: MemoryInfo | null}} SessionList
 *   terminal: "tmux", or "degraded" when new sessions cannot live in tmux (terminalReason says why);
 *   memory: the container's memory (null when the gateway cannot read it)
 */

/** @returns {Promise<SessionList>} */
export async function listSessions() {
  const response = await request("/api/sessions");
  const body = await response.json();
  return {
    sessions: body.sessions,
    terminal: String(body.terminal ?? "tmux"),
    terminalReason: String(body.terminal_reason ?? ""),
    memory: body.memory ?? null,
  };
}

/**
 * @param {{name?: string, cols: number, rows: number}} options the size is the new shell's first
 *   window size, so it starts out matching this browser instead of tmux's default
 * @returns {Promise<SessionInfo>}
 */
export async function createSession(options) {
  const response = await request("/api/sessions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(options),
  });
  return (await response.json()).session;
}

/** @param {string} name */
export async function deleteSession(name) {
  await request(`/api/sessions/${encodeURIComponent(name)}`, { method: "DELETE" });
}

/**
 * Rename a session (tmux rename-session); 409 when the name is taken, 400 when it breaks the rule.
 * @param {string} name
 * @param {string} newName
 * @returns {Promise<SessionInfo>}
 */
export async function renameSession(name, newName) {
  const response = await request(`/api/sessions/${encodeURIComponent(name)}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: newName }),
  });
  return (await response.json()).session;
}
