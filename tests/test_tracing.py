"""Tracing across the pipeline (topics/tracing.py): with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one
send is one trace, gateway → processor → gateway, its context carried in Kafka record headers;
unset, nothing is made."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from devstack.embedded.process import free_port
from tests.conftest import Api, eventually
from tests.stack import start_dev
from tests.test_dev_stack import stop
from topics import tracing


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str]


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ExportedSpan(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            {a.key: a.value.string_value for a in span.attributes},
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    found = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", found.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield found, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.timeout(300)
async def test_one_send_is_one_trace_across_gateway_processor_and_gateway(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    found, endpoint = collector
    data_dir = tmp_path / "traced"
    ports = [free_port() for _ in range(3)]
    dev = start_dev(
        data_dir,
        *ports,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within a tenth of a second, not five
    )
    try:
        base = f"http://127.0.0.1:{ports[0]}"
        async with Api(base, f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            alice, bob = await api.new_device("ta"), await api.new_device("tb")
            channel = await api.direct(alice, bob.user_id)
            bob_socket = await api.connect(bob)
            alice_socket = await api.connect(alice)
            cmid = await alice_socket.send_message(channel, "traced")
            await alice_socket.accepted(cmid)
            (delivered,) = await bob_socket.collect_messages(channel, 1)
            assert delivered["text"] == "traced"

            def trace_of_send() -> list[ExportedSpan]:
                roots = [
                    s
                    for s in found.spans
                    if s.name == "parley.message"
                    and s.attributes.get("parley.client_msg_id") == cmid
                ]
                if len(roots) != 1:
                    return []
                return [s for s in found.spans if s.trace_id == roots[0].trace_id]

            async def complete() -> bool:
                # The sender's echo and the receiver's copy: one delivery per recipient socket's
                # gateway record (both users are on this gateway: one record each).
                names = sorted(s.name for s in trace_of_send())
                return names.count("parley.deliver") >= 1 and "parley.pipeline" in names

            await eventually(complete, 60, "the send's spans from every hop")
            spans = trace_of_send()
            by_id = {s.span_id: s for s in spans}
            (root,) = [s for s in spans if s.name == "parley.message"]
            (pipeline,) = [s for s in spans if s.name == "parley.pipeline"]
            deliveries = [s for s in spans if s.name == "parley.deliver"]
            assert (root.service, root.parent_id) == ("parley-gateway", "")
            assert (pipeline.service, pipeline.parent_id) == ("parley-processor", root.span_id)
            assert pipeline.attributes["parley.channel_id"] == channel
            for deliver in deliveries:
                assert deliver.service == "parley-gateway"
                assert by_id[deliver.parent_id] is pipeline
            # Only the send's trace: every span of it is one of these hops.
            assert {s.name for s in spans} == {
                "parley.message",
                "parley.pipeline",
                "parley.deliver",
            }
    finally:
        stop(dev.process, signal.SIGTERM, data_dir)


def test_off_without_an_endpoint_nothing_is_made() -> None:
    # The suite's own processes run without OTEL_EXPORTER_OTLP_ENDPOINT.
    assert not tracing.enabled()
    with tracing.span("parley.message") as span:
        assert span is None
        assert tracing.headers_of(span) is None
    assert (
        tracing.parent_of([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]) is None
    )
