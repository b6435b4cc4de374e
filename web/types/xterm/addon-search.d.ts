// The typings of /static/node_modules/@xterm/addon-search (see web/jsconfig.json "paths").
export * from "@xterm/addon-search";
