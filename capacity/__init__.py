"""The capacity model's simulation (docs/capacity.md): `python -m capacity`."""
