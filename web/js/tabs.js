// @ts-check
/**
 * The session tabs in the top bar: an ARIA tablist (roving tabindex, manual activation), rename in
 * place, and the bell/finished marks. Pure view: it reports what the user asked for and leaves
 * the REST calls and switching to main.js.
 */

import { element } from "./dom.js";

/**
 * @typedef {import("./api.js").SessionInfo} SessionInfo
 * @typedef {"bell" | "finished"} TabMark
 * @typedef {{
 *   onSelect(name: string): void,
 *   onCreate(): void,
 *   onClose(name: string): void,
 *   onRename(name: string, newName: string): Promise<boolean>,
 *   onLeave(): void,
 * }} TabActions
 *   onRename resolves false when the rename failed (the actions tell the user why);
 *   onLeave: Escape in the tab bar, back to the terminal
 */

/** The gateway's rule (services/tmux.py), checked here only to answer before a round trip. */
export const SESSION_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const MARK_TEXT = { bell: "🔔", finished: "✓" };
const MARK_SPOKEN = { bell: "rang the bell", finished: "command finished" };

export class SessionTabs {
  #list;
  #actions;
  /** @type {SessionInfo[]} */
  #sessions = [];
  #current = "";
  /** @type {Map<string, TabMark>} */
  #marks = new Map();
  /** Names in the order last shown, so an ended current session keeps its place. */
  /** @type {string[]} */
  #shownNames = [];
  /** Skips rebuilding the DOM when the periodic refresh changes nothing the tabs show. */
  #renderedKey = "";
  /** Scroll only when the current tab changes, not on refreshes, so a scrolled strip stays put. */
  #scrolledTo = "";
  /** The session whose name is being edited; renders wait until the edit ends. */
  #editing = "";

  /**
   * @param {HTMLElement} list the tablist element; one role=tab child per session
   * @param {HTMLButtonElement} newButton
   * @param {TabActions} actions
   */
  constructor(list, newButton, actions) {
    this.#list = list;
    this.#actions = actions;
    newButton.addEventListener("click", () => actions.onCreate());
    list.addEventListener("click", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      const tab = target.closest('[role="tab"]');
      if (!(tab instanceof HTMLElement) || target.closest("input")) return;
      const name = tab.dataset.session ?? "";
      if (target.closest(".tab-close")) actions.onClose(name);
      else if (name !== this.#current) actions.onSelect(name);
    });
    list.addEventListener("dblclick", (event) => {
      const tab = /** @type {HTMLElement} */ (event.target).closest('[role="tab"]');
      if (tab instanceof HTMLElement && !/** @type {HTMLElement} */ (event.target).closest(".tab-close")) {
        this.rename(tab.dataset.session ?? "");
      }
    });
    list.addEventListener("keydown", (event) => this.#onKey(event));
  }

  /** @param {SessionInfo[]} sessions */
  setSessions(sessions) {
    this.#sessions = sessions;
    this.#render();
  }

  /** @param {string} name */
  setCurrent(name) {
    this.#current = name;
    this.#render();
  }

  /** @param {Map<string, TabMark>} marks */
  setMarks(marks) {
    this.#marks = marks;
    this.#render();
  }

  /** The names in tab order, as shown. */
  get names() {
    return [...this.#shownNames];
  }

  /** Move keyboard focus to the current tab (the way out of the terminal). */
  focusCurrent() {
    this.#tabFor(this.#current)?.focus();
  }

  /**
   * Edit a tab's name in place: Enter renames, Escape or leaving the field keeps the old name.
   * @param {string} name
   */
  rename(name) {
    const tab = this.#tabFor(name);
    if (!tab || this.#editing) return;
    this.#editing = name;
    const label = /** @type {HTMLElement} */ (tab.querySelector(".tab-name"));
    const input = document.createElement("input");
    input.className = "tab-rename";
    input.value = name;
    input.maxLength = 32;
    input.spellcheck = false;
    input.setAttribute("aria-label", `New name for session ${name}`);
    label.replaceChildren(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (/** @type {string | null} */ newName) => {
      if (done) return;
      done = true;
      let keep = true;
      if (newName !== null && newName !== name) keep = !(await this.#actions.onRename(name, newName));
      this.#editing = "";
      this.#renderedKey = ""; // the input replaced the label: draw the tab again
      this.#render();
      if (keep) this.#tabFor(name)?.focus();
    };
    input.addEventListener("keydown", (event) => {
      event.stopPropagation(); // the tablist's arrows and Delete must not act while typing
      if (event.key === "Enter") {
        event.preventDefault();
        const value = input.value.trim();
        if (!SESSION_NAME.test(value)) {
          input.setCustomValidity("1-32 characters: letters, digits, _ and -");
          input.reportValidity();
          return;
        }
        finish(value);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(null);
      }
    });
    input.addEventListener("input", () => input.setCustomValidity(""));
    input.addEventListener("blur", () => finish(null));
    // The bar cancels mousedown to keep the terminal focused; the field must still take clicks.
    input.addEventListener("mousedown", (event) => event.stopPropagation());
  }

  /** @param {KeyboardEvent} event */
  #onKey(event) {
    const tab = /** @type {HTMLElement} */ (event.target).closest('[role="tab"]');
    if (!(tab instanceof HTMLElement) || event.altKey || event.ctrlKey || event.metaKey) return;
    const tabs = [...this.#list.querySelectorAll('[role="tab"]')].map((t) => /** @type {HTMLElement} */ (t));
    const at = tabs.indexOf(tab);
    const name = tab.dataset.session ?? "";
    /** @type {HTMLElement | undefined} */
    let next;
    switch (event.key) {
      case "ArrowRight":
        next = tabs[(at + 1) % tabs.length];
        break;
      case "ArrowLeft":
        next = tabs[(at - 1 + tabs.length) % tabs.length];
        break;
      case "Home":
        next = tabs[0];
        break;
      case "End":
        next = tabs[tabs.length - 1];
        break;
      case "Enter":
      case " ":
        if (name === this.#current) this.#actions.onLeave();
        else this.#actions.onSelect(name);
        break;
      case "Delete":
        this.#actions.onClose(name);
        break;
      case "F2":
        this.rename(name);
        break;
      case "Escape":
        this.#actions.onLeave();
        break;
      default:
        return;
    }
    event.preventDefault();
    if (next) {
      for (const t of tabs) t.tabIndex = t === next ? 0 : -1;
      next.focus();
      next.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  /** @param {string} name */
  #tabFor(name) {
    return /** @type {HTMLElement | null} */ (this.#list.querySelector(`[role="tab"][data-session="${CSS.escape(name)}"]`));
  }

  #render() {
    if (this.#editing) return;
    const names = this.#sessions.map((session) => session.name);
    // Keep a tab for the open session even when it is gone, in its old place, so the bar shows
    // where you are.
    const missing = !this.#current || names.includes(this.#current) ? null : this.#current;
    if (missing) {
      const before = this.#shownNames.slice(0, Math.max(this.#shownNames.indexOf(missing), 0));
      const at = before.filter((n) => names.includes(n)).length;
      names.splice(this.#shownNames.includes(missing) ? at : names.length, 0, missing);
    }
    const byName = new Map(this.#sessions.map((session) => [session.name, session]));
    const shown = names.map((name) => {
      const session = byName.get(name);
      return [name, session ? describe(session) : "this session does not exist", session?.degraded === true, this.#marks.get(name) ?? ""];
    });
    const key = JSON.stringify([shown, this.#current]);
    if (key === this.#renderedKey) return;
    this.#renderedKey = key;
    this.#shownNames = names;

    const focused = this.#list.contains(document.activeElement)
      ? /** @type {HTMLElement} */ (document.activeElement).closest('[role="tab"]')?.getAttribute("data-session")
      : null;
    const items = shown.map(([name, title, degraded, mark]) => {
      const extra = name === missing ? "missing" : degraded ? "degraded" : undefined;
      return this.#tab(String(name), String(title), extra, /** @type {TabMark | ""} */ (mark));
    });
    this.#list.replaceChildren(...items);
    // Roving tabindex: one tab in the page's Tab order (the current one, else the first).
    const rover = this.#tabFor(this.#current) ?? items[0];
    if (rover) rover.tabIndex = 0;
    if (focused) this.#tabFor(focused)?.focus();
    if (this.#scrolledTo !== this.#current) {
      this.#scrolledTo = this.#current;
      this.#tabFor(this.#current)?.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  /**
   * @param {string} name
   * @param {string} title
   * @param {string | undefined} extraClass
   * @param {TabMark | ""} mark
   */
  #tab(name, title, extraClass, mark) {
    const tab = document.createElement("li");
    tab.id = `tab-${name}`;
    tab.dataset.session = name;
    tab.className = "tab";
    if (extraClass) tab.classList.add(extraClass);
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-selected", String(name === this.#current));
    tab.setAttribute("aria-controls", "terminal");
    tab.title = `${title}\nDouble-click or F2 to rename`;
    tab.tabIndex = -1;

    const label = element("span", "tab-name", name);

    const markBox = element("span", "tab-mark");
    if (mark) {
      tab.dataset.mark = mark;
      markBox.textContent = MARK_TEXT[mark];
      markBox.title = MARK_SPOKEN[mark];
      const spoken = element("span", "visually-hidden", `, ${MARK_SPOKEN[mark]}`);
      label.append(spoken);
    }
    markBox.setAttribute("aria-hidden", "true");

    // Not a button: a control inside a tab is invalid ARIA. Delete or Alt+Shift+W close by keyboard.
    const close = element("span", "tab-close");
    close.setAttribute("aria-hidden", "true");
    close.title = `Close session ${name}`;
    close.textContent = "×";

    tab.append(label, markBox, close);
    return tab;
  }
}

/** @param {SessionInfo} session */
function describe(session) {
  const windows = session.windows === 1 ? "1 window" : `${session.windows} windows`;
  const clients = session.clients === 1 ? "1 client" : `${session.clients} clients`;
  const kind = session.degraded ? " · without tmux: ends when the web process restarts" : "";
  return `${session.name}: ${session.command || "shell"} · ${windows} · ${clients}${kind}`;
}
