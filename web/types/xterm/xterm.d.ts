// The typings of /static/node_modules/@xterm/xterm (see web/jsconfig.json "paths").
export * from "@xterm/xterm";
