"""Parley's benchmark harness (SPEC §6): `make bench` or `python -m bench --help`."""
