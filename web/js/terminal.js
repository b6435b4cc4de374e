// @ts-check
/**
 * Builds the xterm.js terminal with its addons. xterm modules are imported by full URL because
 * the CSP (script-src 'self') forbids the inline import map that bare names would need.
 */

import { Terminal } from "/static/node_modules/@xterm/xterm/lib/xterm.mjs";
import { FitAddon } from "/static/node_modules/@xterm/addon-fit/lib/addon-fit.mjs";
import { WebLinksAddon } from "/static/node_modules/@xterm/addon-web-links/lib/addon-web-links.mjs";
import { Unicode11Addon } from "/static/node_modules/@xterm/addon-unicode11/lib/addon-unicode11.mjs";
import { SearchAddon } from "/static/node_modules/@xterm/addon-search/lib/addon-search.mjs";
import { WebglAddon } from "/static/node_modules/@xterm/addon-webgl/lib/addon-webgl.mjs";
import { PROTOCOL } from "/js/protocol.js";
import { PALETTES } from "./themes.js";


/**
 * @param {HTMLElement} container
 * @param {{fontSize: number, theme: "dark" | "light"}} look from the saved preferences (prefs.js)
 * @returns {{term: Terminal, search: SearchAddon, fit: () => void}}
 */
export function createTerminal(container, look) {
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace',
    fontSize: look.fontSize,
    scrollback: 0, // tmux keeps the history (history.js); degraded shells get some: connection.js
    allowProposedApi: true, // the Unicode 11 width tables are a proposed API
    macOptionIsMeta: true, // Alt+key for readline and Emacs, as on Linux
    theme: PALETTES[look.theme],
  });
  const fitAddon = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fitAddon);
  // Ctrl/Cmd+click opens a link, as in editors: a plain click (to place the cursor, to select) must not.
  term.loadAddon(
    new WebLinksAddon((event, uri) => {
      if (event.ctrlKey || event.metaKey) window.open(uri, "_blank", "noopener,noreferrer");
    }),
  );
  // OSC 52 is handled by clipboard.js (installOsc52): the stock addon answers clipboard queries.
  term.loadAddon(new Unicode11Addon());
  term.loadAddon(search);
  // Emoji and CJK widths as tmux computes them, so the cursor and tmux agree on columns.
  term.unicode.activeVersion = "11";
  term.open(container);
  useWebglIfAvailable(term);

  /**
   * Fits the terminal to its container, within the sizes the gateway accepts (a huge window
   * with a small font could otherwise ask for more columns than a resize message may carry).
   */
  const fit = () => {
    const proposed = fitAddon.proposeDimensions();
    if (!proposed || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return;
    const cols = Math.min(proposed.cols, PROTOCOL.MAX_COLS);
    const rows = Math.min(proposed.rows, PROTOCOL.MAX_ROWS);
    if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
  };
  return { term, search, fit };
}

/**
 * The WebGL renderer is much faster for floods of output, but is optional: without WebGL (or when
 * the GPU drops the context) xterm keeps working with its DOM renderer.
 * @param {Terminal} term
 */
function useWebglIfAvailable(term) {
  try {
    const webgl = new WebglAddon();
    webgl.onContextLoss(() => webgl.dispose());
    term.loadAddon(webgl);
  } catch {
    // DOM renderer it is
  }
}
