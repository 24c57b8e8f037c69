"""The stateless WebSocket gateway: HTTP API, client sockets, publish to and consume from topics."""
