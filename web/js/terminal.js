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

const THEME = {
  background: "#16181d",
  foreground: "#d4d7dd",
  cursor: "#e6e6e6",
  cursorAccent: "#16181d",
  selectionBackground: "#3a4a66",
  black: "#1f2229",
  red: "#e06c75",
  green: "#98c379",
  yellow: "#e5c07b",
  blue: "#61afef",
  magenta: "#c678dd",
  cyan: "#56b6c2",
  white: "#d4d7dd",
  brightBlack: "#5c6370",
  brightRed: "#ef8891",
  brightGreen: "#b5e08f",
  brightYellow: "#f0d197",
  brightBlue: "#82c4ff",
  brightMagenta: "#dc9cf0",
  brightCyan: "#7fd3dd",
  brightWhite: "#ffffff",
};

/**
 * @param {HTMLElement} container
 * @returns {{term: Terminal, search: SearchAddon, fit: () => void}}
 */
export function createTerminal(container) {
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace',
    fontSize: 14,
    scrollback: 10_000,
    allowProposedApi: true, // the Unicode 11 width tables are a proposed API
    macOptionIsMeta: true, // Alt+key for readline and Emacs, as on Linux
    theme: THEME,
  });
  const fitAddon = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fitAddon);
  term.loadAddon(new WebLinksAddon());
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
