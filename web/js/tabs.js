/**
 * The session tabs in the top bar. Pure view: it reports clicks and leaves the REST calls and
 * switching to main.js.
 */

/**
 * @typedef {import("./api.js").SessionInfo} SessionInfo
 * @typedef {{onSelect(name: string): void, onCreate(): void, onClose(name: string): void}} TabActions
 */

export class SessionTabs {
  #list;
  #actions;
  /** @type {SessionInfo[]} */
  #sessions = [];
  #current = "";
  /** Skips rebuilding the DOM when the periodic refresh changes nothing the tabs show. */
  #renderedKey = "";
  /** Scroll only when the current tab changes, not on refreshes, so a scrolled strip stays put. */
  #scrolledTo = "";

  /**
   * @param {HTMLElement} list the `<ul>` that holds one `<li>` per session
   * @param {HTMLButtonElement} newButton
   * @param {TabActions} actions
   */
  constructor(list, newButton, actions) {
    this.#list = list;
    this.#actions = actions;
    newButton.addEventListener("click", () => actions.onCreate());
    list.addEventListener("click", (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      if (!button) return;
      const name = button.closest("li").dataset.session;
      if (button.classList.contains("tab-close")) {
        actions.onClose(name);
      } else if (name !== this.#current) {
        actions.onSelect(name);
      }
    });
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

  #render() {
    const names = this.#sessions.map((session) => session.name);
    // Keep a tab for the open session even when it is gone, so the bar shows where you are.
    const missing = names.includes(this.#current) ? null : this.#current;
    const shown = this.#sessions.map((session) => [session.name, describe(session), session.degraded === true]);
    // Degraded (no tmux) sessions are marked: they end when the web process restarts.
    const key = JSON.stringify([shown, this.#current]);
    if (key === this.#renderedKey) return;
    this.#renderedKey = key;

    const items = shown.map(([name, title, degraded]) =>
      this.#tab(String(name), String(title), degraded ? "degraded" : undefined),
    );
    if (missing) items.push(this.#tab(missing, "this session does not exist", "missing"));
    this.#list.replaceChildren(...items);
    if (this.#scrolledTo !== this.#current) {
      this.#scrolledTo = this.#current;
      this.#list.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  /**
   * @param {string} name
   * @param {string} title
   * @param {string} [extraClass]
   */
  #tab(name, title, extraClass) {
    const item = document.createElement("li");
    item.dataset.session = name;
    item.className = "tab";
    if (extraClass) item.classList.add(extraClass);

    const select = document.createElement("button");
    select.type = "button";
    select.className = "tab-name";
    select.setAttribute("role", "tab");
    select.setAttribute("aria-selected", String(name === this.#current));
    select.title = title;
    select.textContent = name;
    // Out of the Tab order: Tab belongs to the shell (completion).
    select.tabIndex = -1;

    const close = document.createElement("button");
    close.type = "button";
    close.className = "tab-close";
    close.setAttribute("aria-label", `Close session ${name}`);
    close.title = `Close session ${name}`;
    close.textContent = "×";
    close.tabIndex = -1;

    item.append(select, close);
    return item;
  }
}

/** @param {SessionInfo} session */
function describe(session) {
  const windows = session.windows === 1 ? "1 window" : `${session.windows} windows`;
  const clients = session.clients === 1 ? "1 client" : `${session.clients} clients`;
  const kind = session.degraded ? " · without tmux: ends when the web process restarts" : "";
  return `${session.name}: ${session.command || "shell"} · ${windows} · ${clients}${kind}`;
}
