"""Makes Faust's consumer fetch wait a setting.

Faust's aiokafka driver hard-codes `fetch_max_wait_ms=1500`. A broker that does not wake a
waiting fetch when data arrives (the embedded one) then adds up to 1.5 s to every hop. This
wraps the driver's consumer factory to apply `Settings.kafka_fetch_max_wait_ms` instead.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def apply_fetch_max_wait(fetch_max_wait_ms: int) -> None:
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = _original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
