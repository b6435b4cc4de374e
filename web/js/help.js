// @ts-check
/**
 * The `?` overlay listing the page's keys. Any module adds its own with `addKeys(section, rows)`,
 * before or after the overlay is installed; the list is rendered each time it opens.
 */

import { request } from "./api.js";
import { element } from "./dom.js";

/** @typedef {{keys: string, what: string}} KeyRow */

/** @type {Map<string, KeyRow[]>} section title → rows, in the order sections were first added */
const sections = new Map();

/**
 * @param {string} section e.g. "Tabs"
 * @param {KeyRow[]} rows keys as shown to the user ("Alt+Shift+N"), and what they do
 */
export function addKeys(section, rows) {
  sections.set(section, [...(sections.get(section) ?? []), ...rows]);
}

/** @returns {ReadonlyMap<string, KeyRow[]>} */
export function listedKeys() {
  return sections;
}

/**
 * The overlay: a modal dialog, opened by `button` or `open()`, closed by Esc, its close button or
 * a click outside; focus goes back where it was.
 * @param {HTMLElement} dialog the `#help` element
 * @param {HTMLButtonElement} button the bar's `?` button
 */
export function installHelp(dialog, button) {
  const body = /** @type {HTMLElement} */ (dialog.querySelector(".help-body"));
  /** @type {HTMLElement | null} */
  let returnTo = null;

  const close = () => {
    if (dialog.hidden) return;
    dialog.hidden = true;
    button.setAttribute("aria-expanded", "false");
    returnTo?.focus();
  };
  const version = /** @type {HTMLElement} */ (dialog.querySelector(".help-version"));
  const open = () => {
    returnTo = /** @type {HTMLElement | null} */ (document.activeElement);
    body.replaceChildren(...render());
    if (!version.textContent) void showVersion(version);
    dialog.hidden = false;
    button.setAttribute("aria-expanded", "true");
    /** @type {HTMLElement} */ (dialog.querySelector(".help-close")).focus();
  };

  button.addEventListener("click", () => (dialog.hidden ? open() : close()));
  dialog.querySelector(".help-close")?.addEventListener("click", close);
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close(); // the dimmed backdrop around the box
  });
  return { open, close, toggle: () => (dialog.hidden ? open() : close()) };
}

/**
 * Which build is running (services/version.py, through /health): what a bug report needs.
 * @param {HTMLElement} target
 */
async function showVersion(target) {
  try {
    const response = await request("/health");
    const { version } = await response.json();
    if (typeof version === "string" && version) target.textContent = `Coding Agents ${version}`;
  } catch {
    // No version shown rather than an error in a list of keys.
  }
}

function render() {
  const nodes = [];
  for (const [title, rows] of sections) {
    const heading = element("h3", "", title);
    const table = document.createElement("table");
    for (const row of rows) {
      const tr = table.insertRow();
      const keys = document.createElement("th");
      keys.scope = "row";
      for (const [i, part] of row.keys.split(" / ").entries()) {
        if (i) keys.append(" / ");
        keys.append(element("kbd", "", part));
      }
      const what = tr.insertCell();
      what.textContent = row.what;
      tr.append(keys, what);
    }
    nodes.push(heading, table);
  }
  return nodes;
}
