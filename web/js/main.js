// @ts-check
/**
 * Page wiring: one terminal, one connection to the session named in the URL, and the bar around
 * them. Each piece lives in its own module; this one only connects them.
 */

import { installAgentKeys, KEYS as TERMINAL_KEYS } from "./agentkeys.js";
import * as api from "./api.js";
import { COPIED_EVENT, enableCopyOnSelect, installOsc52 } from "./clipboard.js";
import { ConnectionState, TerminalConnection } from "./connection.js";
import { TerminalMenu } from "./contextmenu.js";
import { installCredentials } from "./credentials.js";
import { DegradedBanner } from "./degraded.js";
import { readTabFlag, writeTabFlag } from "./dom.js";
import { fetchDownload, installDownloads } from "./download.js";
import { installFileDrop } from "./files.js";
import { addKeys, installHelp } from "./help.js";
import { TmuxHistory } from "./history.js";
import { KeyBar } from "./keybar.js";
import { MemoryWarning } from "./memory.js";
import { BackgroundNotices } from "./notices.js";
import { OutageOverlay } from "./outage.js";
import { installPageKeys } from "./pagekeys.js";
import { applyPageTheme, installPreferences, loadPrefs, resolveTheme } from "./prefs.js";
import { Poller } from "./poller.js";
import { SearchBox } from "./search.js";
import { installSetup } from "./setup.js";
import { installShortcuts } from "./shortcuts.js";
import { ConnectionIndicator, Toast } from "./status.js";
import { installSync } from "./sync.js";
import { SESSION_NAME, SessionTabs } from "./tabs.js";
import { createTerminal } from "./terminal.js";

const DEFAULT_SESSION = "main";
const TAB_REFRESH_MS = 5_000;
/** While the page is hidden, the list is still read (slower) if background notices may notify. */
const HIDDEN_REFRESH_MS = 15_000;
const LONG_POLL_LEARNED_KEY = "long-poll-learned";

const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const container = byId("terminal");
const prefs = loadPrefs();
applyPageTheme(resolveTheme(prefs.theme)); // before the terminal paints, so it never flashes dark
const { term, search, fit } = createTerminal(container, { fontSize: prefs.fontSize, theme: resolveTheme(prefs.theme) });
const toast = new Toast(byId("toast"));
const preferences = installPreferences({
  term,
  fit,
  prefs,
  button: /** @type {HTMLButtonElement} */ (byId("settings-button")),
  popover: byId("settings-popover"),
  toast,
});
const help = installHelp(byId("help"), /** @type {HTMLButtonElement} */ (byId("help-button")));
const indicator = new ConnectionIndicator(byId("connection"));
const tmuxHistory = new TmuxHistory(term, container, byId("history-bar"));
const searchBox = new SearchBox(byId("search"), search, term, tmuxHistory, () => currentSession);
const keyBar = new KeyBar(byId("keybar"), /** @type {HTMLButtonElement} */ (byId("keybar-toggle")), term);
keyBar.onPage = (pages) => tmuxHistory.scrollPages(pages);
const outage = new OutageOverlay(byId("terminal-area"), byId("outage"));
new TerminalMenu(byId("terminal-menu"), container, term, {
  find: () => searchBox.open(),
  notify: (message) => toast.show(message),
  hasTmux: () => tmuxHistory.active,
});
window.addEventListener(COPIED_EVENT, () => toast.show("Copied"));
const tabs = new SessionTabs(byId("tab-list"), /** @type {HTMLButtonElement} */ (byId("new-session")), {
  onSelect: (name) => openSession(name),
  onCreate: () => createAndOpenSession(),
  onClose: (name) => closeSession(name),
  onRename: (name, newName) => renameSession(name, newName),
  onLeave: () => term.focus(),
});
const notices = new BackgroundNotices({
  notifyAllowed: preferences.notifyAllowed,
  open: (name) => openSession(name),
});
const banner = new DegradedBanner(byId("degraded-banner"), toast);
const memoryWarning = new MemoryWarning(byId("memory-banner"));
const overlay = {
  box: byId("session-overlay"),
  text: byId("session-overlay-text"),
  button: byId("session-overlay-create"),
};

const forceLongPoll = new URLSearchParams(location.search).get("transport") === "poll";
/**
 * Set while connections had to fall back to long-poll. Remembered for the tab's lifetime
 * (sessionStorage), so reloads and other sessions start on long-poll rather than wait out a
 * WebSocket that a proxy swallows; they still try WebSocket beside it, and clear this once one opens.
 */
let longPollLearned = readTabFlag(LONG_POLL_LEARNED_KEY);
/** @type {TerminalConnection | null} */
let connection = null;
let currentSession = "";
let terminalTitle = "";
/** @type {api.SessionInfo[]} */
let knownSessions = [];

installShortcuts(term, { find: () => searchBox.open() });
addKeys("Terminal", TERMINAL_KEYS);
addKeys("History and mouse", [
  { keys: "Wheel · scrollbar · swipe · ⇞ ⇟", what: "Scroll tmux's whole history (typing returns to the prompt)" },
  { keys: "Right-click", what: "Menu: copy, paste, find, split pane, clear" },
  { keys: "Ctrl+click · Cmd+click", what: "Open a link" },
]);
installPageKeys({
  newTab: () => createAndOpenSession(),
  nextTab: () => stepSession(1),
  previousTab: () => stepSession(-1),
  closeTab: () => closeSession(currentSession),
  renameTab: () => tabs.rename(currentSession),
  focusTabs: () => tabs.focusCurrent(),
  help: () => help.toggle(),
  fontBigger: preferences.bigger,
  fontSmaller: preferences.smaller,
  fontReset: preferences.resetFont,
});
enableCopyOnSelect(term, container);
installAgentKeys(term, container);
installFileDrop({ term, area: byId("terminal-area"), toast, session: () => currentSession });
installDownloads(term, toast);
installOsc52(term, container, { session: () => currentSession, toast });
term.onTitleChange((title) => {
  terminalTitle = title;
  updateTitle();
});
overlay.button.addEventListener("click", () => recreateCurrentSession());
// Clicking the bar must not take focus from the terminal, or the next keystroke goes nowhere.
byId("topbar").addEventListener("mousedown", (event) => event.preventDefault());

trackVisualViewport();
let fitFrame = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(fitFrame);
  fitFrame = requestAnimationFrame(fit);
}).observe(container);
fit(); // before connecting, so the first attach already has this window's size

openSession(sessionFromUrl());
// The tab list's own poll: read now, then one request at a time, at once when the page is seen
// again. While hidden it is read only if background notices may notify. A failed read is tried at
// the usual pace (the connection indicator already says when the gateway is away).
let tabsRead = false;
new Poller(
  async () => {
    const visible = document.visibilityState === "visible";
    if (!tabsRead || visible || preferences.notifyAllowed()) await refreshTabs();
    tabsRead = true;
    return visible ? TAB_REFRESH_MS : HIDDEN_REFRESH_MS;
  },
  { backoff: () => TAB_REFRESH_MS },
).poll();
// After the terminal has started connecting: setup is shown beside it, never waited for.
installSetup({
  term,
  toast,
  session: () => currentSession,
  // Without tmux an agent gets a session (a tab) of its own rather than a window.
  openSession: async (name) => {
    await refreshTabs();
    openSession(name);
  },
});
installSync({ term });
installCredentials({ toast, onClose: () => term.focus() });
// A long-poll connection is only released by its DELETE; a WebSocket closes by itself.
window.addEventListener("pagehide", () => connection?.close());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) openSession(currentSession, { reopen: true });
});

function sessionFromUrl() {
  const name = new URLSearchParams(location.search).get("s");
  return name && SESSION_NAME.test(name) ? name : DEFAULT_SESSION;
}

/**
 * Attach the terminal to `name`, replacing the current connection.
 * @param {string} name
 * @param {{reopen?: boolean}} [options] reopen: reconnect even if `name` is already shown
 */
function openSession(name, { reopen = false } = {}) {
  if (name === currentSession && connection && !reopen) return;
  connection?.close();
  notices.switched(currentSession, name);
  const switched = currentSession !== "" && currentSession !== name;
  currentSession = name;
  terminalTitle = "";
  updateTitle();
  const url = new URL(location.href);
  url.searchParams.set("s", name);
  history.replaceState(history.state, "", url);
  tabs.setCurrent(name);
  tabs.setMarks(notices.marks);
  if (switched) refreshTabs(); // a fresh baseline for the tab just left (notices.js)
  container.setAttribute("aria-labelledby", `tab-${name}`);
  overlay.box.hidden = true;
  term.reset(); // the old session's screen must not linger under the new one's

  const opened = new TerminalConnection(term, name, {
    longPollOnly: forceLongPoll,
    startOnLongPoll: longPollLearned,
    transformInput: keyBar.transformInput,
  });
  opened.addEventListener("statechange", () => {
    if (opened === connection) onStateChange(opened);
  });
  opened.addEventListener("notice", (event) => {
    if (opened === connection) toast.show(/** @type {CustomEvent} */ (event).detail.message);
  });
  opened.addEventListener("download", (event) => {
    const { token, name } = /** @type {CustomEvent} */ (event).detail;
    fetchDownload(String(token), String(name), toast);
  });
  connection = opened;
  window.__terminal = { term, connection, history: tmuxHistory };
  tmuxHistory.follow(opened);
  outage.follow(opened);
  indicator.show(opened);
  opened.start();
  term.focus();
}

/** @param {TerminalConnection} changed */
function onStateChange(changed) {
  indicator.show(changed);
  outage.show(changed);
  if (changed.state === ConnectionState.ENDED || changed.state === ConnectionState.MISSING) {
    showSessionGone(changed.state);
    refreshTabs();
  } else if (changed.state === ConnectionState.CONNECTED) {
    overlay.box.hidden = true;
    if (changed.prefersLongPoll !== longPollLearned) {
      longPollLearned = changed.prefersLongPoll;
      writeTabFlag(LONG_POLL_LEARNED_KEY, longPollLearned);
    }
  }
}

/** @param {string} state ENDED or MISSING */
function showSessionGone(state) {
  const name = currentSession;
  overlay.text.textContent =
    state === ConnectionState.ENDED ? `Session “${name}” has ended.` : `There is no session “${name}”.`;
  overlay.button.textContent = state === ConnectionState.ENDED ? `Start “${name}” again` : `Create “${name}”`;
  overlay.box.hidden = false;
}

async function recreateCurrentSession() {
  const name = currentSession;
  try {
    await api.createSession({ name, cols: term.cols, rows: term.rows });
  } catch (error) {
    // 409: someone else created it meanwhile, which is just as good.
    if (!(error instanceof api.ApiError && error.status === 409)) {
      toast.show(/** @type {Error} */ (error).message);
      return;
    }
  }
  refreshTabs();
  openSession(name, { reopen: true });
}

/** @param {number} step 1 for the next tab, -1 for the previous, wrapping around */
function stepSession(step) {
  const names = tabs.names;
  if (names.length < 2) return;
  const at = names.indexOf(currentSession);
  openSession(names[(at + step + names.length) % names.length]);
}

/**
 * @param {string} name
 * @param {string} newName
 * @returns {Promise<boolean>} whether it was renamed (the toast says why not)
 */
async function renameSession(name, newName) {
  try {
    await api.renameSession(name, newName);
  } catch (error) {
    toast.show(`Cannot rename “${name}”: ${/** @type {Error} */ (error).message}`);
    return false;
  }
  await refreshTabs();
  // The shell is the same; the connection (and the address bar) follow its new name.
  if (name === currentSession) openSession(newName, { reopen: true });
  return true;
}

async function createAndOpenSession() {
  try {
    const session = await api.createSession({ cols: term.cols, rows: term.rows });
    await refreshTabs();
    openSession(session.name);
  } catch (error) {
    toast.show(/** @type {Error} */ (error).message);
    term.focus();
  }
}

/** @param {string} name */
async function closeSession(name) {
  if (!confirm(`Close session “${name}”? Everything running in it will be stopped.`)) {
    term.focus();
    return;
  }
  const position = knownSessions.findIndex((session) => session.name === name);
  const wasCurrent = name === currentSession;
  // Detach first, so the terminal does not flash "session ended" on its way to the next one.
  if (wasCurrent) connection?.close();
  try {
    await api.deleteSession(name);
  } catch (error) {
    if (!(error instanceof api.ApiError && error.status === 404)) {
      toast.show(/** @type {Error} */ (error).message);
      if (wasCurrent) openSession(name, { reopen: true });
      return;
    }
  }
  const remaining = (await refreshTabs()) ?? knownSessions.filter((session) => session.name !== name);
  if (wasCurrent) {
    // The neighbour that slid into the closed tab's place, as browsers do with their own tabs.
    const next = remaining[Math.min(Math.max(position, 0), remaining.length - 1)];
    openSession(next ? next.name : DEFAULT_SESSION, { reopen: true });
  } else {
    term.focus();
  }
}

/** @returns {Promise<api.SessionInfo[] | null>} null when the list could not be fetched */
async function refreshTabs() {
  try {
    const list = await api.listSessions();
    knownSessions = list.sessions;
    banner.show(list);
    memoryWarning.show(list.memory);
  } catch {
    return null; // the connection indicator already tells the user the gateway is unreachable
  }
  tabs.setSessions(knownSessions);
  tabs.setMarks(notices.update(knownSessions, currentSession));
  return knownSessions;
}

function updateTitle() {
  document.title = terminalTitle ? `${currentSession} · ${terminalTitle}` : currentSession;
}

/**
 * iOS Safari neither resizes the layout for its on-screen keyboard nor supports
 * `interactive-widget`; sizing the page to the visual viewport keeps the prompt above the keyboard.
 * Multiplying by the scale keeps pinch-zoom from shrinking the layout.
 */
function trackVisualViewport() {
  const viewport = window.visualViewport;
  if (!viewport) return;
  const update = () => {
    const height = Math.round(viewport.height * viewport.scale);
    document.documentElement.style.setProperty("--viewport-height", `${height}px`);
  };
  viewport.addEventListener("resize", update);
  update();
}
