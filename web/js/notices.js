// @ts-check
/**
 * Bell and "command finished" notices for background tabs, from the session list's `bells` (a
 * count kept by tmux's alert-bell hook) and `output_at` (the current window's last output).
 *
 * "Finished" means: a background session printed something after you left it, and has then been
 * quiet for QUIET_MS. That is what a build, a test run or an agent's answer look like when they
 * end and the prompt (or the agent's input box) is back; a program that keeps printing (a clock,
 * a spinner) is never "finished". A mark stays until you open the tab.
 */

const QUIET_MS = 8_000;

/**
 * @typedef {import("./api.js").SessionInfo} SessionInfo
 * @typedef {import("./tabs.js").TabMark} TabMark
 * @typedef {{bells: number, outputAt: number, changedAt: number, busy: boolean}} Seen
 */

export class BackgroundNotices {
  /** @type {Map<string, Seen>} what was last seen of each session */
  #seen = new Map();
  /** @type {Map<string, TabMark>} */
  #marks = new Map();
  /** Sessions left since the last list: what they did while on screen is not news. */
  /** @type {Set<string>} */
  #left = new Set();
  #notify;
  #open;

  /**
   * @param {{notifyAllowed(): boolean, open(name: string): void}} options open: a notification's
   *   click opens its session
   */
  constructor({ notifyAllowed, open }) {
    this.#notify = notifyAllowed;
    this.#open = open;
  }

  /**
   * @param {SessionInfo[]} sessions
   * @param {string} current the session on screen: it is never marked, and its marks clear
   * @param {number} [now]
   * @returns {Map<string, TabMark>} the marks to show
   */
  update(sessions, current, now = Date.now()) {
    const names = new Set(sessions.map((s) => s.name));
    for (const name of [...this.#seen.keys()]) if (!names.has(name)) this.#seen.delete(name);
    for (const name of [...this.#marks.keys()]) if (!names.has(name)) this.#marks.delete(name);
    for (const session of sessions) {
      const bells = session.bells ?? 0;
      const outputAt = session.output_at ?? 0;
      const seen = this.#seen.get(session.name);
      if (session.name === current || !seen || this.#left.has(session.name)) {
        this.#seen.set(session.name, { bells, outputAt, changedAt: now, busy: false });
        if (session.name === current) this.#marks.delete(session.name);
        continue;
      }
      if (bells > seen.bells) this.#mark(session.name, "bell");
      seen.bells = bells;
      if (outputAt !== seen.outputAt) {
        seen.outputAt = outputAt;
        seen.changedAt = now;
        seen.busy = true;
      } else if (seen.busy && now - seen.changedAt >= QUIET_MS) {
        seen.busy = false;
        if (this.#marks.get(session.name) !== "bell") this.#mark(session.name, "finished");
      }
    }
    this.#left.clear();
    return new Map(this.#marks);
  }

  /**
   * The user moved from `left` to `opened`: the opened tab's mark goes, and the next list sets the
   * left tab's baseline (the list is up to a refresh old, so its counts may predate the switch).
   * @param {string} left
   * @param {string} opened
   */
  switched(left, opened) {
    if (left && left !== opened) this.#left.add(left);
    this.clear(opened);
  }

  /** The marks as they stand. */
  get marks() {
    return new Map(this.#marks);
  }

  /** @param {string} name */
  clear(name) {
    this.#marks.delete(name);
    const seen = this.#seen.get(name);
    if (seen) seen.busy = false;
  }

  /**
   * @param {string} name
   * @param {TabMark} mark
   */
  #mark(name, mark) {
    this.#marks.set(name, mark);
    if (!this.#notify()) return;
    const body = mark === "bell" ? "rang the bell" : "has finished: it printed and is now quiet";
    try {
      const notice = new Notification(`Session ${name}`, { body, tag: `session-${name}` });
      notice.addEventListener("click", () => {
        window.focus();
        this.#open(name);
        notice.close();
      });
    } catch {
      // some browsers only notify from a service worker: the tab mark is still there
    }
  }
}
