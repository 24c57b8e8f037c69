"""The processor's producer: aiokafka on the worker's own loop, idempotent, acks=all."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from schemas.settings import Settings


class RecordProducer:
    """What the pipeline, the notifier's neighbours and the dead-letter path write with
    (`processors.pipeline.RecordSink`)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        # Made in `start`: aiokafka's clients belong to the loop they are made in.
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        settings = self._settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=self._client_id,
            acks="all",
            # A produce the client retries (a lost response, a broker restart) is written once.
            enable_idempotence=True,
            # Records handed over in one turn of the loop leave in one request per broker.
            linger_ms=settings.kafka_linger_ms,
            max_request_size=settings.kafka_max_request_bytes,
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> asyncio.Future[object]:
        """Queue a record; the returned future resolves when the broker acknowledged it."""
        assert self._producer is not None, "started first"
        fut: asyncio.Future[object] = await self._producer.send(
            topic,
            value,
            key=key,
            partition=partition,
            timestamp_ms=None if timestamp is None else int(timestamp * 1000),
            headers=headers,
        )
        return fut
