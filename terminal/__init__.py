"""The terminal client: `parley chat` (`chat.py`), and `parley login`, `send`, `edit`, `delete`,
`history`, `search` (`oneshot.py`). It speaks the public protocol through `parley_client` and
imports nothing of the server (docs/terminal-client.md)."""
