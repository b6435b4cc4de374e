// @ts-check
/**
 * Preferences kept in localStorage: font size, theme (dark, light, or the system's
 * prefers-color-scheme) and desktop notices for background tabs; and the bar's settings popover.
 */

import { PALETTES } from "./themes.js";

const STORAGE_KEY = "coding-agents-prefs";
export const FONT = { min: 8, max: 32, default: 14 };
const THEMES = ["dark", "light", "system"];
const LIGHT_QUERY = "(prefers-color-scheme: light)";

/** @typedef {{fontSize: number, theme: "dark" | "light" | "system", notify: boolean}} Prefs */

/** @returns {Prefs} the saved preferences, each field checked (storage is user-editable) */
export function loadPrefs() {
  /** @type {Record<string, unknown>} */
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") ?? {};
  } catch {
    // unreadable or disabled storage: defaults
  }
  const size = Number(saved.fontSize);
  return {
    fontSize: Number.isInteger(size) && size >= FONT.min && size <= FONT.max ? size : FONT.default,
    theme: THEMES.includes(String(saved.theme)) ? /** @type {Prefs["theme"]} */ (saved.theme) : "system",
    notify: saved.notify === true,
  };
}

/** @param {Prefs} prefs */
function savePrefs(prefs) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(prefs));
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

/**
 * @param {Prefs["theme"]} theme
 * @returns {"dark" | "light"}
 */
export function resolveTheme(theme) {
  if (theme !== "system") return theme;
  return window.matchMedia(LIGHT_QUERY).matches ? "light" : "dark";
}

/** The page's colours (style.css) and the browser's own widgets follow the theme. */
/** @param {"dark" | "light"} resolved */
export function applyPageTheme(resolved) {
  document.documentElement.dataset.theme = resolved;
  document.querySelector('meta[name="color-scheme"]')?.setAttribute("content", resolved);
}

/**
 * @param {{
 *   term: import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal,
 *   fit(): void,
 *   prefs: Prefs,
 *   button: HTMLButtonElement,
 *   popover: HTMLElement,
 *   toast: {show(message: string): void},
 * }} parts
 */
export function installPreferences({ term, fit, prefs, button, popover, toast }) {
  const apply = () => {
    const resolved = resolveTheme(prefs.theme);
    applyPageTheme(resolved);
    term.options.theme = PALETTES[resolved];
    if (term.options.fontSize !== prefs.fontSize) {
      term.options.fontSize = prefs.fontSize;
      fit(); // new cell size: new rows and columns, which the connection passes on to tmux
    }
    render();
  };
  const change = (/** @type {Partial<Prefs>} */ patch) => {
    Object.assign(prefs, patch);
    savePrefs(prefs);
    apply();
  };
  const setFont = (/** @type {number} */ size) =>
    change({ fontSize: Math.min(FONT.max, Math.max(FONT.min, size)) });

  window.matchMedia(LIGHT_QUERY).addEventListener("change", () => {
    if (prefs.theme === "system") apply();
  });

  const render = () => {
    const size = /** @type {HTMLOutputElement} */ (popover.querySelector(".font-size"));
    size.value = `${prefs.fontSize}px`;
    for (const radio of popover.querySelectorAll('input[name="theme"]')) {
      const input = /** @type {HTMLInputElement} */ (radio);
      input.checked = input.value === prefs.theme;
    }
    const notify = /** @type {HTMLInputElement} */ (popover.querySelector(".notify"));
    notify.checked = prefs.notify && notificationsAllowed();
  };

  popover.innerHTML = `
    <h2 class="settings-title">Settings</h2>
    <div class="settings-row">
      <span id="font-size-label">Font size</span>
      <button type="button" class="bar-button font-smaller" aria-label="Smaller font">A−</button>
      <output class="font-size" aria-labelledby="font-size-label"></output>
      <button type="button" class="bar-button font-bigger" aria-label="Bigger font">A+</button>
      <button type="button" class="bar-button font-reset">Reset</button>
    </div>
    <fieldset class="settings-row">
      <legend>Theme</legend>
      <label><input type="radio" name="theme" value="dark"> Dark</label>
      <label><input type="radio" name="theme" value="light"> Light</label>
      <label><input type="radio" name="theme" value="system"> System</label>
    </fieldset>
    <label class="settings-row"><input type="checkbox" class="notify">
      Desktop notification when a background tab rings or finishes</label>`;
  popover.querySelector(".font-smaller")?.addEventListener("click", () => setFont(prefs.fontSize - 1));
  popover.querySelector(".font-bigger")?.addEventListener("click", () => setFont(prefs.fontSize + 1));
  popover.querySelector(".font-reset")?.addEventListener("click", () => setFont(FONT.default));
  popover.addEventListener("change", async (event) => {
    const input = /** @type {HTMLInputElement} */ (event.target);
    if (input.name === "theme") change({ theme: /** @type {Prefs["theme"]} */ (input.value) });
    if (!input.classList.contains("notify")) return;
    if (input.checked && !(await askNotifications())) {
      toast.show("Notifications are blocked for this page: allow them in the browser's site settings");
      change({ notify: false });
      return;
    }
    change({ notify: input.checked });
  });
  // The bar cancels mousedown (keeps the terminal focused); the popover's fields need it.
  popover.addEventListener("mousedown", (event) => event.stopPropagation());

  const toggle = (/** @type {boolean} */ show) => {
    popover.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
    if (show) /** @type {HTMLElement | null} */ (popover.querySelector("button"))?.focus();
    else term.focus();
  };
  button.addEventListener("click", () => toggle(popover.hidden === true));
  popover.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      toggle(false);
    }
  });
  document.addEventListener("mousedown", (event) => {
    const target = /** @type {Node} */ (event.target);
    if (!popover.hidden && !popover.contains(target) && !button.contains(target)) toggle(false);
  });

  apply();
  return {
    bigger: () => setFont(prefs.fontSize + 1),
    smaller: () => setFont(prefs.fontSize - 1),
    resetFont: () => setFont(FONT.default),
    /** Whether background-tab notices may become desktop notifications. */
    notifyAllowed: () => prefs.notify && notificationsAllowed(),
  };
}

function notificationsAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

async function askNotifications() {
  if (!("Notification" in window)) return false;
  if (Notification.permission === "granted") return true;
  return (await Notification.requestPermission()) === "granted";
}
