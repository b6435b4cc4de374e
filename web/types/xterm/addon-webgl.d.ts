// The typings of /static/node_modules/@xterm/addon-webgl (see web/jsconfig.json "paths").
export * from "@xterm/addon-webgl";
