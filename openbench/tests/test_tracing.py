"""Tracing (SPEC §14): nothing without OTEL_EXPORTER_OTLP_ENDPOINT; with it, request, query, Redis, HTTP and
provider-call spans, and a run's job continuing the trace of the request that started it.

Spans are read with the SDK's in-memory exporter (installed per test, removed afterwards); the start-up
rules are checked in fresh processes, as a web or worker process would start."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from accounts.models import User
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations import executor
from evaluations.models import Execution, TestResult
from evaluations.services import execution_start
from evaluations.tests.conftest import clean_queue, drain_background_work  # noqa: F401 - a fixture
from openbench import tracing
from openbench.dbpool import close_pools_before_fork
from openbench.tests.api import V1, client_for
from openbench.tests.test_settings import _run as run_django
from providers.testing.fake_servers import FakeServer

_STARTUP_PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from opentelemetry import trace
from openbench import tracing
again = tracing.setup()
middleware = [m for m in settings.MIDDLEWARE if "opentelemetry" in m]
print(json.dumps({
    "enabled": tracing.enabled(),
    "again": again,
    "middleware": middleware,
    "provider": type(trace.get_tracer_provider()).__name__,
    "sdk_loaded": "opentelemetry.sdk.trace" in sys.modules,
    "instrumented": sorted(
        m for m in sys.modules if m.startswith("opentelemetry.instrumentation.") and m.count(".") == 2
    ),
}))
"""


def _start_a_process(**env: str) -> dict[str, Any]:
    done = run_django(_STARTUP_PROBE, **{"OTEL_EXPORTER_OTLP_ENDPOINT": "", **env})
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.slow
def test_without_an_endpoint_a_process_installs_nothing() -> None:
    started = _start_a_process()
    assert started == {
        "enabled": False,
        "again": False,
        "middleware": [],
        "provider": "ProxyTracerProvider",  # the API's placeholder: no SDK provider
        "sdk_loaded": False,
        "instrumented": [],
    }


@pytest.mark.slow
def test_with_an_endpoint_a_process_installs_tracing_once() -> None:
    # Nothing listens there: spans are batched and only exported later, so start-up neither waits nor fails.
    started = _start_a_process(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_SERVICE_NAME="bench-web")
    assert started["enabled"] is True
    assert started["again"] is False  # set up once, by the app's ready(); a second call changes nothing
    assert started["middleware"] == [
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    ]
    assert started["provider"] == "TracerProvider"
    assert {"django", "psycopg", "redis", "httpx", "aiohttp_client"} <= {
        name.rsplit(".", 1)[1] for name in started["instrumented"]
    }


def test_a_bad_endpoint_fails_fast() -> None:
    done = run_django("import django; django.setup()", OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318")
    assert done.returncode != 0
    assert "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL" in done.stderr


def test_the_helpers_do_nothing_when_tracing_is_off() -> None:
    assert not tracing.enabled()
    assert tracing.trace_carrier() == {}
    model = LLMModelFactory.build()
    with tracing.provider_call(model, execution_id=None) as span:
        span.record(response=None, error=None, attempts=0)
    assert span.span is None


# --- with an in-memory exporter ----------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing installed for one test; connections opened before it are closed so psycopg's are traced."""
    yield from _installed()


def _installed() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    close_pools_before_fork()
    tracing.install(SimpleSpanProcessor(exporter), service_name="openbench-test")
    yield exporter
    tracing.uninstall()
    executor.wait_idle()
    # Connections opened while instrumented keep a traced cursor: none of them may serve later tests.
    close_pools_before_fork()
    connections.close_all()


def _by_name(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name.startswith(prefix)]


def _server_span(exporter: InMemorySpanExporter, path_part: str) -> ReadableSpan:
    found = [
        span
        for span in exporter.get_finished_spans()
        if span.kind == SpanKind.SERVER and path_part in str((span.attributes or {}).get("http.target", span.name))
    ]
    assert len(found) == 1, [span.name for span in exporter.get_finished_spans()]
    return found[0]


def _descends_from(span: ReadableSpan, ancestor: ReadableSpan, everything: dict[int, ReadableSpan]) -> bool:
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == ancestor.context.span_id:
            return True
        current = everything.get(current.parent.span_id)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_request_is_one_trace_with_its_queries_and_cache_calls(spans: InMemorySpanExporter) -> None:
    TestCaseFactory()
    response = client_for(None).get(f"{V1}/leaderboard")
    assert response.status_code == 200
    request = _server_span(spans, "leaderboard")
    assert request.parent is None
    assert (request.attributes or {}).get("http.status_code") == 200
    everything = {span.context.span_id: span for span in spans.get_finished_spans()}
    inside = [span for span in everything.values() if _descends_from(span, request, everything)]
    assert all(span.context.trace_id == request.context.trace_id for span in inside)
    if connections["default"].vendor == "postgresql":
        assert any((span.attributes or {}).get("db.system") == "postgresql" for span in inside)
    if settings.REDIS_URL:  # the analytics cache
        assert any((span.attributes or {}).get("db.system") == "redis" for span in inside)


_CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_CLIENT_TRACEPARENT = f"00-{_CLIENT_TRACE}-00f067aa0ba902b7-01"


@pytest.mark.django_db(transaction=True)
def test_a_clients_traceparent_is_not_continued(spans: InMemorySpanExporter) -> None:
    # Anyone may send one: continued, it would put their requests in a trace of their choosing and let its
    # sampled flag decide whether we record (and pay for) their spans.
    response = client_for(None).get(f"{V1}/leaderboard", HTTP_TRACEPARENT=_CLIENT_TRACEPARENT)
    assert response.status_code == 200
    request = _server_span(spans, "leaderboard")
    assert request.parent is None
    assert format(request.context.trace_id, "032x") != _CLIENT_TRACE


@pytest.fixture
def trusting_spans(settings: Any) -> Iterator[InMemorySpanExporter]:
    settings.OTEL_TRUST_INCOMING_CONTEXT = True
    yield from _installed()


@pytest.mark.django_db(transaction=True)
def test_behind_a_proxy_that_starts_traces_the_incoming_context_can_be_trusted(
    trusting_spans: InMemorySpanExporter,
) -> None:
    response = client_for(None).get(f"{V1}/leaderboard", HTTP_TRACEPARENT=_CLIENT_TRACEPARENT)
    assert response.status_code == 200
    assert format(_server_span(trusting_spans, "leaderboard").context.trace_id, "032x") == _CLIENT_TRACE


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_a_run_continues_the_request_trace_with_one_span_per_provider_call(spans: InMemorySpanExporter) -> None:
    owner = User.objects.create_user(email="tracer@example.com", password="x" * 12)
    test_case = TestCaseFactory(created_by=owner, expected_output="Paris")
    with FakeServer("openai", default_answer="Paris", latency_ms=5) as server:
        models = [
            LLMModelFactory(
                provider="openai_compatible", provider_model_id=f"traced-{i}", config={"base_url": server.base_url}
            )
            for i in range(2)
        ]
        response = client_for(owner).post(f"{V1}/tests/{test_case.pk}/run", {}, format="json")
        assert response.status_code == 202, response.content
        drain_background_work()
    assert Execution.objects.get().status == Execution.Status.COMPLETED
    request = _server_span(spans, "/run")
    job = _by_name(spans, "evaluations job")
    assert len(job) == 1
    assert job[0].parent is not None and job[0].parent.span_id == request.context.span_id
    calls = _by_name(spans, "provider call")
    assert len(calls) == 2
    tokens = {
        str(result.model.provider_model_id): (result.input_tokens, result.output_tokens)
        for result in TestResult.objects.select_related("model")
    }
    everything = {span.context.span_id: span for span in spans.get_finished_spans()}
    for call in calls:
        attributes = dict(call.attributes or {})
        assert call.context.trace_id == request.context.trace_id
        assert _descends_from(call, job[0], everything)
        assert attributes["gen_ai.provider.name"] == "openai_compatible"
        assert attributes["openbench.outcome"] == "ok"
        assert attributes["openbench.attempts"] == 1
        assert attributes["openbench.execution_id"] == str(Execution.objects.get().pk)
        model_id = str(attributes["gen_ai.request.model"])
        assert attributes["openbench.model"] == next(m.name for m in models if m.provider_model_id == model_id)
        assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == tokens[model_id]
        assert attributes["gen_ai.usage.input_tokens"] > 0
        # The adapter's HTTP request to the vendor is a child of the call's span.
        http = [span for span in everything.values() if span.parent and span.parent.span_id == call.context.span_id]
        assert any(span.kind == SpanKind.CLIENT and "127.0.0.1" in str(span.attributes) for span in http)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_a_failed_call_and_a_cached_answer_say_so_on_their_spans(spans: InMemorySpanExporter, settings: Any) -> None:
    settings.EVAL_CACHE = True
    settings.EVAL_MAX_ATTEMPTS = 1
    owner = User.objects.create_user(email="tracer@example.com", password="x" * 12)
    test_case = TestCaseFactory(created_by=owner, expected_output="Paris")
    with FakeServer("openai", default_answer="Paris", latency_ms=1, fault_rates={"server_error": 1.0}) as server:
        broken = LLMModelFactory(
            provider="openai_compatible", provider_model_id="broken", config={"base_url": server.base_url}
        )
        steady = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
        client = client_for(owner)
        for _ in range(2):  # the second run answers the steady model from the cache
            assert client.post(f"{V1}/tests/{test_case.pk}/run", {}, format="json").status_code == 202
            drain_background_work()
    outcomes = sorted(
        (str(span.attributes["openbench.model"]), str(span.attributes["openbench.outcome"]), span.status.status_code)
        for span in _by_name(spans, "provider call")
        if span.attributes
    )
    assert outcomes == [
        (broken.name, "transient", StatusCode.ERROR),
        (broken.name, "transient", StatusCode.ERROR),
        (steady.name, "cached", StatusCode.UNSET),
        (steady.name, "ok", StatusCode.UNSET),
    ]
    runs = [span for span in spans.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert len(runs) == 2
    assert len({span.context.trace_id for span in runs}) == 2  # each run its own trace


def test_a_job_taken_into_a_running_engine_keeps_its_own_trace(
    spans: InMemorySpanExporter, settings: Any, transactional_db: None
) -> None:
    """Two requests, one executor thread: the second job runs inside the first one's engine (LocalIntake),
    and its calls still belong to the second request's trace."""
    settings.USE_RQ = False
    settings.EVAL_INPROCESS_WORKERS = 1
    settings.EVAL_CACHE = False
    owner = User.objects.create_user(email="tracer@example.com", password="x" * 12)
    slow = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 400}, sandbox=True)
    quick = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}, sandbox=True)
    tracer = tracing.tracer()
    with tracer.start_as_current_span("request one") as one:
        first = execution_start(test_case=TestCaseFactory(created_by=owner), models=[slow], started_by=owner)
    time.sleep(0.15)  # the first engine is running, waiting on its slow model
    with tracer.start_as_current_span("request two") as two:
        second = execution_start(test_case=TestCaseFactory(created_by=owner), models=[quick], started_by=owner)
    executor.wait_idle()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == Execution.Status.COMPLETED
    # The second job's executions ran under its own lease, claimed by the first job's engine.
    assert _by_name(spans, "evaluations job") and len(_by_name(spans, "evaluations job")) == 1
    calls = {
        str(span.attributes["openbench.execution_id"]): span
        for span in _by_name(spans, "provider call")
        if span.attributes
    }
    assert calls[str(first.pk)].context.trace_id == one.get_span_context().trace_id
    assert calls[str(second.pk)].context.trace_id == two.get_span_context().trace_id
    parent = calls[str(second.pk)].parent
    assert parent is not None and parent.span_id == two.get_span_context().span_id


class OtlpCollector:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (POST /v1/traces, protobuf): what a worker process exported."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                            received.append(
                                {"name": span.name, "trace_id": span.trace_id.hex(), "service": service, **attributes}
                            )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpCollector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real rq worker process)")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_queue")
def test_an_rq_worker_process_continues_the_trace_and_exports_it_over_otlp(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """The request here, the job in `manage.py rqworker`'s forked work horse: the horse's spans reach the
    collector (exported before the horse's os._exit) in the request's trace."""
    from evaluations.tests.test_queue import Workers

    owner = User.objects.create_user(email="tracer@example.com", password="x" * 12)
    test_case = TestCaseFactory(created_by=owner, expected_output="Paris")
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}, sandbox=True)
    assert client_for(owner).post(f"{V1}/tests/{test_case.pk}/run", {}, format="json").status_code == 202
    request = _server_span(spans, "/run")
    with OtlpCollector() as collector:
        workers = Workers(tmp_path)
        try:
            workers.start(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_SERVICE_NAME="openbench-worker")
            workers.wait(timeout=120)
        finally:
            workers.stop_all()
        assert Execution.objects.get().status == Execution.Status.COMPLETED, workers.logs()
        calls = [span for span in collector.received if span["name"].startswith("provider call")]
    assert len(calls) == 1, collector.received
    assert calls[0]["trace_id"] == format(request.context.trace_id, "032x")
    assert calls[0]["service"] == "openbench-worker"
    assert calls[0]["openbench.model"] == model.name
    assert calls[0]["openbench.outcome"] == "ok"
    job = [span for span in collector.received if span["name"] == "evaluations job"]
    assert [span["trace_id"] for span in job] == [calls[0]["trace_id"]]
