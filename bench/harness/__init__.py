"""What every scenario stands on: the stack under test, the load and its pacing, the sockets
and their worker processes, CPU sampling, latency histograms, and the records of a run."""
