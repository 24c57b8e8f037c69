"""Parley: an open-source chat backend (command line, settings, identifiers, dev stack)."""

__version__ = "0.1.0"
