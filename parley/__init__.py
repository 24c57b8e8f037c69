"""Parley: an open-source chat backend. This package is its entry point, the `parley` command
(`cli.py`), which nothing imports: the terminal client is `terminal/`, the dev stack
`devstack/`, the protocol's client library `parley_client/`."""

__version__ = "0.1.0"
