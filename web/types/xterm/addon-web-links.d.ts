// The typings of /static/node_modules/@xterm/addon-web-links (see web/jsconfig.json "paths").
export * from "@xterm/addon-web-links";
