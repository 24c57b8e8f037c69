"""The scenarios: each measures its figures into the run's records (bench/harness/results.py)."""
