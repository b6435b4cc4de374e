// @ts-check
/**
 * The terminal's colour palettes, one per page theme (style.css's :root and [data-theme="light"]).
 * Dark is One Dark's; light is One Light's, with darker bright colours so they read on white.
 */

export const PALETTES = {
  dark: {
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
  },

  light: {
    background: "#fafafa",
    foreground: "#383a42",
    cursor: "#526eff",
    cursorAccent: "#fafafa",
    selectionBackground: "#c5d4f5",
    black: "#383a42",
    red: "#c8322e",
    green: "#3e8a3c",
    yellow: "#986801",
    blue: "#2f62d4",
    magenta: "#a626a4",
    cyan: "#0b7a91",
    white: "#9a9ba1",
    brightBlack: "#696c77",
    brightRed: "#e45649",
    brightGreen: "#50a14f",
    brightYellow: "#c18401",
    brightBlue: "#4078f2",
    brightMagenta: "#c34dc1",
    brightCyan: "#0184bc",
    brightWhite: "#c8c9cc",
  },
};
