// @ts-check
/**
 * `download FILE` in a shell (services/download.py) records the file under a one-time token; the
 * gateway's `download` message (in tmux) or a private OSC sequence on the terminal (without tmux)
 * names the token; this fetches `/api/downloads/TOKEN` and saves the file. The token alone is
 * worth nothing without the record the command wrote, so terminal output cannot forge a download.
 */

import { request } from "./api.js";

const OSC_CODE = 7733; // services/download.py OSC_CODE
const PAYLOAD = /^download=([A-Za-z0-9_-]{16,64});(.*)$/s;
const TOKEN = /^[A-Za-z0-9_-]{16,64}$/;
/** Tokens this page has fetched: a replayed message or sequence must not fetch (and fail) again. */
const fetched = new Set();

/**
 * @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term
 * @param {{show(message: string): void}} toast
 */
export function installDownloads(term, toast) {
  term.parser.registerOscHandler(OSC_CODE, (data) => {
    const match = PAYLOAD.exec(data);
    if (!match) return true; // ours, malformed: swallowed rather than printed
    let name = "download";
    try {
      name = decodeURIComponent(match[2]) || name;
    } catch {
      // keep the generic name
    }
    fetchDownload(match[1], name, toast);
    return true;
  });
}

/**
 * Fetch and save one offered file, once per token.
 * @param {string} token @param {string} name @param {{show(message: string): void}} toast
 */
export async function fetchDownload(token, name, toast) {
  if (!TOKEN.test(token) || fetched.has(token)) return;
  fetched.add(token);
  name = name || "download";
  toast.show(`Downloading ${name}…`);
  try {
    const response = await request(`/api/downloads/${token}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    // The browser has taken the blob once the click's navigation started.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    toast.show(`Downloaded ${name}`);
  } catch (error) {
    toast.show(`Download of ${name} failed: ${/** @type {Error} */ (error).message}`);
  }
}
