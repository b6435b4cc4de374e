// Hooks the page leaves on `window` for tests and the curious (main.js, loading.js).
interface Window {
  __terminal?: {
    term: import("@xterm/xterm").Terminal;
    connection: import("../js/connection.js").TerminalConnection;
    history: import("../js/history.js").TmuxHistory;
  };
  __snake?: {
    readonly state: import("../js/snake.js").SnakeGame["state"];
    placeFood(cell: [number, number]): void;
  };
}
