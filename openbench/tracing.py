"""OpenTelemetry tracing (SPEC §14): spans for requests, queries, Redis, outgoing HTTP and provider calls.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: then `setup()` (called once per process from
`openbench.apps`) installs a tracer provider exporting over OTLP/HTTP in batches, and instruments Django,
psycopg, Redis, httpx and aiohttp (the provider adapters use both). Without it nothing is installed:
no provider, no instrumentation, and the helpers below return at their first line.

A run continues the trace of the request that started it: the job carries the W3C trace context
(`trace_carrier()` when it is enqueued, `job_span()` when it runs); a job taken into an engine that is
already running carries its own context, attached to each of its pairs (`continued()`). The engine opens
one span per provider call (`provider_call()`), with the model, the provider, the tokens and the outcome.
A request's own traceparent is not continued unless OTEL_TRUST_INCOMING_CONTEXT (`_OutgoingOnly`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from providers.base import GenerationResponse, ProviderError

# Probes and static files would be most of the spans and tell nothing.
DEFAULT_EXCLUDED_URLS = "health,ready,metrics,static/"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_instrumented: list[Any] = []  # the instrumentors applied (BaseInstrumentor subclasses)
# The propagator configured before `install` (OTEL_PROPAGATORS): jobs' carriers are written and read with it.
_carrier_propagator: TextMapPropagator | None = None


class _OutgoingOnly(TextMapPropagator):
    """The global propagator while tracing is on, unless OTEL_TRUST_INCOMING_CONTEXT: it writes our context
    into outgoing calls but reads nothing from incoming requests (the Django instrumentation's only use of
    extract), so a client's traceparent can neither join our traces nor choose whether they are sampled."""

    def __init__(self, inner: TextMapPropagator) -> None:
        self.inner = inner

    def extract(
        self, carrier: CarrierT, context: otel_context.Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> otel_context.Context:
        return context if context is not None else otel_context.Context()

    def inject(
        self, carrier: CarrierT, context: otel_context.Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        self.inner.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self.inner.fields


def setup() -> bool:
    """Install tracing from the settings, once per process; False when it is off or already installed."""
    from django.conf import settings

    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _lock:
        if _provider is not None:
            return False
        # The exporter reads the endpoint (plus /v1/traces) and the other OTEL_EXPORTER_OTLP_* variables itself.
        _install(BatchSpanProcessor(OTLPSpanExporter()), service_name=settings.OTEL_SERVICE_NAME)
    # Global too, so that a library's own spans (and a debugger's get_tracer_provider()) find it.
    assert _provider is not None
    trace.set_tracer_provider(_provider)
    return True


def install(processor: SpanProcessor, *, service_name: str = "openbench") -> TracerProvider:
    """Install tracing with the given span processor (tests pass an in-memory exporter's); see `uninstall`."""
    with _lock:
        if _provider is not None:
            raise RuntimeError("Tracing is already installed in this process.")
        return _install(processor, service_name=service_name)


def _install(processor: SpanProcessor, *, service_name: str) -> TracerProvider:
    global _provider, _tracer, _carrier_propagator
    from django.conf import settings
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS") or DEFAULT_EXCLUDED_URLS
    # Each instrumentor gets this provider explicitly, so tests can install and remove it again.
    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls=excluded)
    _instrumented[:] = [DjangoInstrumentor()]
    for instrumentor in (
        PsycopgInstrumentor(),
        RedisInstrumentor(),
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
    ):
        instrumentor.instrument(tracer_provider=provider)
        _instrumented.append(instrumentor)
    _carrier_propagator = propagate.get_global_textmap()
    if not settings.OTEL_TRUST_INCOMING_CONTEXT:
        propagate.set_global_textmap(_OutgoingOnly(_carrier_propagator))
    _provider, _tracer = provider, provider.get_tracer("openbench")
    return provider


def uninstall() -> None:
    """Remove what `install` did: the instrumentations, and the provider (flushed and shut down)."""
    global _provider, _tracer, _carrier_propagator
    with _lock:
        for instrumentor in _instrumented:
            instrumentor.uninstrument()
        _instrumented.clear()
        if _carrier_propagator is not None:
            propagate.set_global_textmap(_carrier_propagator)
            _carrier_propagator = None
        if _provider is not None:
            _provider.shutdown()
        _provider = _tracer = None


def enabled() -> bool:
    return _tracer is not None


def tracer() -> trace.Tracer:
    """The project's tracer (tracing must be installed)."""
    if _tracer is None:
        raise RuntimeError("Tracing is not installed in this process.")
    return _tracer


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered (a forked rq work horse ends with os._exit, which would drop them)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def _carriers() -> TextMapPropagator:
    return _carrier_propagator or propagate.get_global_textmap()


def trace_carrier() -> dict[str, str]:
    """The W3C trace context of the current span, to be carried by a job ({} when tracing is off)."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _carriers().inject(carrier)
    return carrier


@contextmanager
def continued(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run a block in the trace of `carrier` ({}: a trace of its own; None: the current context as it is)."""
    if _tracer is None or carrier is None:
        yield
        return
    token = otel_context.attach(_carriers().extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def job_span(
    name: str, carrier: Mapping[str, str] | None, *, flush_after: bool = False, **attributes: Any
) -> Iterator[None]:
    """A background job's span, a child of the request that enqueued it (its `carrier`)."""
    if _tracer is None:
        yield
        return
    parent = _carriers().extract(carrier or {})
    try:
        with _tracer.start_as_current_span(
            name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes or None
        ):
            yield
    finally:
        if flush_after:
            flush()


class CallSpan:
    """Records how a provider call ended on its span (does nothing when tracing is off)."""

    __slots__ = ("span",)

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span

    def record(
        self, *, response: GenerationResponse | None, error: ProviderError | None, attempts: int, cached: bool = False
    ) -> None:
        span = self.span
        if span is None:
            return
        if response is not None:
            outcome = "cached" if cached else "ok"
            if response.usage.input_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
            if response.usage.output_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
        elif error is not None:
            outcome = error.kind
            span.set_attribute("error.type", error.kind)
            span.set_status(trace.StatusCode.ERROR, error.kind)
        else:
            outcome = "stopped"  # the execution was cancelled or taken over before a call
        span.set_attribute("openbench.outcome", outcome)
        span.set_attribute("openbench.attempts", attempts)


_OFF = CallSpan(None)


class CalledModel(Protocol):
    """What a span says of the model called (catalog's LLMModel; not imported: tracing sits below every app)."""

    name: str
    provider: str
    provider_model_id: str


@contextmanager
def provider_call(model: CalledModel, *, execution_id: str | None) -> Iterator[CallSpan]:
    """One span around a model call (retries and waits for slots included); record its end on what it yields."""
    if _tracer is None:
        yield _OFF
        return
    attributes: dict[str, str] = {
        "gen_ai.provider.name": model.provider,
        "gen_ai.request.model": model.provider_model_id,
        "openbench.model": model.name,
    }
    if execution_id is not None:
        attributes["openbench.execution_id"] = execution_id
    with _tracer.start_as_current_span(
        f"provider call {model.provider}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield CallSpan(span)


def cached_call(model: CalledModel, *, execution_id: str, response: GenerationResponse) -> None:
    """The span of a pair answered from the response cache: no call made, the cached answer's tokens."""
    if _tracer is None:
        return
    with provider_call(model, execution_id=execution_id) as span:
        span.record(response=response, error=None, attempts=0, cached=True)
