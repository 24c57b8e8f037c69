"""The Faust worker that runs the message pipeline."""

from __future__ import annotations

import logging
from typing import Any

import faust
import mode.loop
from faust.app.base import BootStrategy
from prometheus_client import generate_latest

from processors.logs import quiet_transient_coordinator_errors
from processors.pipeline import Topics
from processors.pipeline_service import PipelineService
from schemas.settings import Settings
from storage.stores import SharedStores
from topics import tracing
from topics.definitions import (
    dead_letter_topic,
    inbox_topic,
    stored_topic,
)

log = logging.getLogger("parley.processor")


def create_app(settings: Settings) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        # Faust runs the worker, supervises the consumers' service and serves the pages; every
        # topic is read by the service's own consumers (processors/consumer.py).
        f"{settings.processor_id}-signals",
        # One URL per bootstrap broker (Faust separates them with `;`, Kafka with `,`).
        broker=";".join(f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=True,
        web_bind=settings.processor_http_host,
        # Only Parley's own pages (/healthz, /metrics): Faust's views of its router, tables,
        # graph and stats would show internals to whoever reaches the port.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        web_port=settings.processor_http_port,
        topic_allow_declare=False,
        # No leader election: nothing runs on a leader alone, and the election would need a
        # topic of Faust's own beside Parley's (topics/definitions.py).
        topic_disable_leader=True,
    )

    # No Kafka client of Faust's own: no consumer (and its thread), no producer, no conductor.
    # The service's consumers and producer do all of it, on the worker's loop.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)

    topics = Topics(
        inbox=inbox_topic(settings).name,
        inbox_partitions=settings.inbox_partitions,
        dead_letter=dead_letter_topic(settings).name,
        stored=stored_topic(settings).name,
        stored_partitions=settings.messages_partitions,
    )
    shared = SharedStores(settings)
    pipeline = PipelineService(settings, shared, topics)
    # Started after the worker, stopped before it (an instance: it holds the settings).
    app.service(pipeline)  # type: ignore[arg-type]

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        # Ready once both consumers took part in an assignment and the presence service runs.
        ready = (
            pipeline.consumer.ready and pipeline.followers.ready and pipeline.presence is not None
        )
        return web.json(
            {
                "status": "ok" if ready else "starting",
                "partitions": pipeline.consumer.partitions + pipeline.followers.partitions,
            },
            status=200 if ready else 503,
        )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type="text/plain")

    return app


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    # uvloop, as the gateway runs: the worker's loops (the agents' and the consumer thread's)
    # poll the embedded broker every few milliseconds, so the loop's own cost shows.
    mode.loop.use("uvloop")
    quiet_transient_coordinator_errors()
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record), so
    # every debug call in aiokafka and Faust built a LogRecord: 15% of the processor's CPU.
    worker.spinner = None
    # Spans exported where OTEL_EXPORTER_OTLP_ENDPOINT points; off when it is unset.
    tracing.start("parley-processor")
    try:
        worker.execute_from_commandline()
    finally:
        tracing.stop()
