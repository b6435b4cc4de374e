// The typings of /static/node_modules/@xterm/addon-fit (see web/jsconfig.json "paths").
export * from "@xterm/addon-fit";
