"""Two settings Faust's aiokafka driver does not expose.

- The consumer's fetch wait: the driver hard-codes `fetch_max_wait_ms=1500`; this applies
  `Settings.kafka_fetch_max_wait_ms`, the one value every Parley consumer uses. Kafka answers
  a waiting fetch as soon as data arrives, so the wait bounds only how often an idle consumer
  asks again (and how long a rebalance waits for an outstanding fetch).
- An idempotent producer: the driver enables idempotence only with exactly-once processing.
  With it, a produce the client retries (a lost response, a broker restart) is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_create_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_producer_extra = faust_aiokafka.Producer._settings_extra


def apply_kafka_tuning(fetch_max_wait_ms: int) -> None:
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = _create_consumer(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    def producer_extra(self: Any) -> Mapping[str, Any]:
        return {**_producer_extra(self), "acks": "all", "enable_idempotence": True}

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    faust_aiokafka.Producer._settings_extra = producer_extra  # type: ignore[method-assign]
