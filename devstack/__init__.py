"""The dev stack: `parley dev`'s supervisor (`supervisor.py`), its launcher as a subprocess for
the tests and benchmarks (`launcher.py`), and the embedded Kafka, Cassandra and Postgres they
start (`embedded/`)."""
