"""The web gateway: pages, REST, terminal transport (WebSocket + long-poll), auth."""
