"""Traces across the pipeline (OpenTelemetry): one send is one trace, whatever processes it.

    gateway: parley.send ──traceparent header──▶ parley.messages.v1
      ──▶ processor: parley.pipeline (store, fan-out) ──traceparent──▶ parley.inbox.v1
      ──▶ gateway: parley.deliver (to the recipients' sockets)

The trace context travels in Kafka record headers (W3C `traceparent`, `tracestate`), so a stock
Kafka client sees it and ignores it. Spans are exported over OTLP/HTTP where the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) points, with the
standard `OTEL_*` settings. Unset, tracing is off: no provider, no header written or read, and
the spans are the API's no-op ones (`enabled()` is checked before any per-record work).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = Sequence[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_FIELDS = frozenset(_PROPAGATOR.fields)
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_tracer = trace.get_tracer("parley")
_provider: object | None = None


def start(service: str) -> bool:
    """Export this process's spans, as `service`, if an OTLP endpoint is configured; returns
    whether tracing is on."""
    global _provider
    if _provider is not None or not any(os.environ.get(name) for name in _ENDPOINTS):
        return _provider is not None
    # Imported only when on: the SDK and exporter cost nothing to a process that does not trace.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def stop() -> None:
    """Export the spans still buffered (at shutdown)."""
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(_provider, TracerProvider):
        _provider.shutdown()


def enabled() -> bool:
    return _provider is not None


def headers_of(span: Span | None) -> list[tuple[str, bytes]] | None:
    """The record headers that make `span` the parent of whatever processes the record; None
    when tracing is off."""
    if span is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return [(name, value.encode()) for name, value in carrier.items()]


def parent_of(headers: Headers | None) -> Context | None:
    """The trace context a record's headers carry, if tracing is on and they carry one."""
    if _provider is None or not headers:
        return None
    carrier = {name: value.decode("latin-1") for name, value in headers if name in _FIELDS}
    if "traceparent" not in carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def begin(name: str, parent: Context | None, kind: SpanKind = SpanKind.INTERNAL) -> Span:
    """A span the caller ends (`span.end()`): for work that outlives one block."""
    return _tracer.start_span(name, context=parent, kind=kind)


@contextmanager
def span(
    name: str, parent: Context | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A span around a block; None when tracing is off (nothing is made)."""
    if _provider is None:
        yield None
        return
    with _tracer.start_as_current_span(name, context=parent, kind=kind) as current:
        yield current
