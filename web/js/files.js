// @ts-check
/**
 * Files into the terminal: dropped or pasted files and images are uploaded to the gateway
 * (`POST /api/sessions/{name}/upload`, saved in ~/uploads) and their paths typed at the prompt,
 * shell-quoted, as a desktop terminal types a dropped file's path. That is how Claude Code and the
 * other agents take an image: they read the path.
 */

import { errorText, request } from "./api.js";

/** Characters a shell never treats specially; anything else gets single quotes. */
const SHELL_SAFE = /^[\p{L}\p{N}_\/.+@,=:%-]+$/u;

/** @param {string} path */
export function shellQuote(path) {
  return SHELL_SAFE.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/** @param {number} bytes */
function size(bytes) {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * The progress box over the terminal while an upload runs; made here so index.html stays as it is.
 */
class UploadProgress {
  #box;
  #text;
  #bar;

  /** @param {HTMLElement} parent */
  constructor(parent) {
    this.#box = document.createElement("div");
    this.#box.id = "upload-progress";
    this.#box.className = "floating";
    this.#box.setAttribute("role", "status");
    this.#box.hidden = true;
    this.#text = document.createElement("span");
    this.#bar = document.createElement("progress");
    this.#bar.max = 1;
    this.#bar.setAttribute("aria-label", "Upload progress");
    this.#box.append(this.#text, this.#bar);
    parent.append(this.#box);
  }

  /** @param {string} label @param {number} fraction */
  show(label, fraction) {
    this.#text.textContent = `${label} ${Math.floor(fraction * 100)}%`;
    this.#bar.value = fraction;
    this.#box.hidden = false;
  }

  hide() {
    this.#box.hidden = true;
  }
}

/**
 * @param {{
 *   term: import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal,
 *   area: HTMLElement,
 *   toast: {show(message: string): void},
 *   session: () => string,
 * }} options area: where files may be dropped and the progress is shown
 */
export function installFileDrop({ term, area, toast, session }) {
  const progress = new UploadProgress(area);
  /** @type {{limit_bytes: number, folder: string} | null} */
  let limits = null;
  let busy = false;

  /** @param {File[]} files */
  const upload = async (files) => {
    if (!files.length) return;
    if (busy) {
      toast.show("An upload is still running; drop the next files when it has finished.");
      return;
    }
    busy = true;
    try {
      limits ??= await fetchLimits(session());
      const total = files.reduce((sum, file) => sum + file.size, 0);
      if (limits && total > limits.limit_bytes) {
        toast.show(`Not uploaded: ${size(total)} is more than the ${size(limits.limit_bytes)} an upload may carry.`);
        return;
      }
      const label = files.length === 1 ? `Uploading ${files[0].name || "file"}…` : `Uploading ${files.length} files…`;
      progress.show(label, 0);
      const paths = await send(session(), files, (fraction) => progress.show(label, fraction));
      term.paste(paths.map(shellQuote).join(" ") + " ");
      toast.show(paths.length === 1 ? `Uploaded to ${paths[0]}` : `Uploaded ${paths.length} files to ${limits?.folder ?? "~/uploads"}`);
    } catch (error) {
      toast.show(`Upload failed: ${/** @type {Error} */ (error).message}`);
    } finally {
      busy = false;
      progress.hide();
      term.focus();
    }
  };

  // Anywhere on the page: a file dropped beside the terminal must not make the browser open it.
  document.addEventListener("dragover", (event) => {
    if (!event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    area.classList.add("drop-target");
  });
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) area.classList.remove("drop-target");
  });
  document.addEventListener("drop", (event) => {
    area.classList.remove("drop-target");
    if (!event.dataTransfer?.files.length) return;
    event.preventDefault();
    upload([...event.dataTransfer.files]);
  });
  // Capture phase, ahead of xterm's own paste handler: files go up, text is left to xterm.
  area.addEventListener(
    "paste",
    (event) => {
      const files = filesOf(event.clipboardData);
      if (!files.length) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      upload(files);
    },
    { capture: true },
  );
  return { upload };
}

/**
 * Files on a clipboard. A copied image arrives as a file item; a copied file from a file manager
 * may come with its name as text too, and the file wins.
 * @param {DataTransfer | null} data
 * @returns {File[]}
 */
function filesOf(data) {
  if (!data) return [];
  const files = [...data.files];
  if (files.length) return files;
  return [...data.items]
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter((file) => file !== null);
}

/** @param {string} name */
async function fetchLimits(name) {
  try {
    return await (await request(`/api/sessions/${encodeURIComponent(name)}/upload`)).json();
  } catch {
    return null; // the upload itself will say what is wrong
  }
}

/**
 * XMLHttpRequest rather than fetch: only it reports upload progress.
 * @param {string} name @param {File[]} files @param {(fraction: number) => void} onProgress
 * @returns {Promise<string[]>}
 */
function send(name, files, onProgress) {
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name || "pasted");
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/sessions/${encodeURIComponent(name)}/upload`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", async () => {
      if (xhr.status === 201) {
        resolve(JSON.parse(xhr.responseText).paths);
        return;
      }
      reject(new Error(await errorText(new Response(xhr.responseText, { status: xhr.status }))));
    });
    xhr.addEventListener("error", () => reject(new Error("the connection to the gateway broke off")));
    xhr.send(form);
  });
}
