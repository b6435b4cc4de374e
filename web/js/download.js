/**
 * `download FILE` in a shell (services/download.py) prints a private OSC sequence naming a
 * one-time token; this fetches `/api/downloads/TOKEN` and saves the file. The token alone is
 * worth nothing without the record the command wrote, so terminal output cannot forge a download.
 */

import { errorText } from "./api.js";

const OSC_CODE = 7733; // services/download.py OSC_CODE
const PAYLOAD = /^download=([A-Za-z0-9_-]{16,64});(.*)$/s;

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
    download(match[1], name, toast);
    return true;
  });
}

/** @param {string} token @param {string} name @param {{show(message: string): void}} toast */
async function download(token, name, toast) {
  toast.show(`Downloading ${name}…`);
  try {
    const response = await fetch(`/api/downloads/${token}`, { cache: "no-store" });
    if (!response.ok) throw new Error(await errorText(response));
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
