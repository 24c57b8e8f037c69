"""What the worker's log leaves out: a normal start's transient coordinator errors.

While a broker creates its offsets topic (the first start of a cluster) or a group's
coordinator moves, aiokafka logs `GroupCoordinatorNotAvailableError` at ERROR and "Marking the
coordinator dead" at WARNING, then retries and succeeds. They are shown at DEBUG; a coordinator
that never comes back shows as a processor whose /healthz stays at "starting" and as consumer
lag (docs/operations.md).
"""

from __future__ import annotations

import logging

_TRANSIENT = ("GroupCoordinatorNotAvailableError", "Marking the coordinator dead")


class _CoordinatorRetries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(part in message for part in _TRANSIENT):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_transient_coordinator_errors() -> None:
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_CoordinatorRetries())
