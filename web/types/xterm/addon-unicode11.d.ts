// The typings of /static/node_modules/@xterm/addon-unicode11 (see web/jsconfig.json "paths").
export * from "@xterm/addon-unicode11";
