"""Faust stream processors: the message pipeline (sequence, persist, fan out)."""
