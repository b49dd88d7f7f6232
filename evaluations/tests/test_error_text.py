"""SPEC §10, "error texts stored in results are ours": a result stores a short reason (at most 300
characters) that we composed, never a vendor's error body, a library's exception text, a fetched document,
a stack trace or a secret. Logs may keep the vendor's words, but never the platform's key."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from evaluations.runner.run import run_executions
from evaluations.scoring.base import ScoreOutcome, ScoringError
from evaluations.scoring.registry import register_scorer
from evaluations.scoring.structured import schema_errors
from evaluations.services import execution_start
from evaluations.tests.test_runner import assert_counters_agree
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

SECRET = "sk-LEAK-0123456789abcdefghijklmnopqrstuvwxyz"
API_KEY = "sk-platform-key-never-logged-42"
# What a misconfigured proxy or a vendor's error page sends back: a whole document with a secret inside.
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body>"
    + '<p>Traceback (most recent call last): File "/srv/app.py", line 12, in handler</p>' * 40
    + f"<pre>OPENAI_API_KEY={SECRET}</pre>"
    + "<p>upstream said no</p>" * 200
    + "</body></html>"
)
JSON_BODY = json.dumps({"error": {"message": f"Internal error; debug token {SECRET}; your key {API_KEY}", "code": 500}})
MAX = 300


@dataclass
class LeakyServer:
    """A local HTTP server answering every request with one status and body (and counting the requests)."""

    status: int
    body: str
    content_type: str
    hits: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def leaky() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: str, content_type: str = "text/html; charset=utf-8") -> LeakyServer:
        spec = LeakyServer(status=status, body=body, content_type=content_type)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                spec.hits.append(self.path)
                payload = spec.body.encode()
                self.send_response(spec.status)
                self.send_header("Content-Type", spec.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        spec.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return spec

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def one_attempt(settings):  # type: ignore[no-untyped-def]
    settings.EVAL_MAX_ATTEMPTS = 1
    settings.EVAL_CACHE = False
    return settings


def assert_ours(text: str) -> None:
    assert len(text) <= MAX, len(text)
    for leaked in (SECRET, API_KEY, "<html", "Traceback", "upstream said no", "debug token"):
        assert leaked not in text, leaked


# Base URLs as each vendor's client expects them (the OpenAI-style clients include /v1).
PROVIDERS = {
    "openai_compatible": ("OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY", "/v1"),
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY", "/v1"),
    "anthropic": ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", ""),
}


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize(("body", "content_type"), [(HTML_PAGE, "text/html"), (JSON_BODY, "application/json")])
def test_a_vendor_500_with_a_secret_in_its_body_stores_only_our_short_reason(
    owner, one_attempt, leaky, caplog, provider, body, content_type
):
    server = leaky(500, body, content_type)
    url_setting, key_setting, suffix = PROVIDERS[provider]
    setattr(one_attempt, url_setting, server.url + suffix)
    setattr(one_attempt, key_setting, API_KEY)
    model = LLMModelFactory(provider=provider, provider_model_id="leaky-model", config={})
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)

    with caplog.at_level(logging.INFO):
        run_executions([execution.pk])

    assert server.hits, "the provider was never called"
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.FAILED
    assert result.error_type == "transient"
    assert_ours(result.error_message)
    assert "HTTP 500: server error" in result.error_message
    assert SECRET not in json.dumps(result.evaluation_details)
    assert result.evaluation_details == {"status_code": 500}
    # The log keeps what the vendor said (for the operator) but never the platform's key.
    assert API_KEY not in caplog.text
    assert_counters_agree(execution)


def test_a_rate_limit_is_stored_as_a_classified_reason(owner, one_attempt, leaky):
    server = leaky(429, JSON_BODY, "application/json")
    one_attempt.OPENAI_COMPATIBLE_BASE_URL = server.url + "/v1"
    model = LLMModelFactory(provider="openai_compatible", provider_model_id="m", config={})
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.error_type == "rate_limited"
    assert result.error_message == "OpenAI-compatible server answered HTTP 429: rate limited."


def test_a_mes_failure_inside_a_200_stores_our_reason_not_what_mes_said(owner, one_attempt, leaky):
    said = json.dumps({"success": False, "output": None, "error": f"Invalid model; trace {SECRET} {HTML_PAGE}"})
    server = leaky(200, said, "application/json")
    one_attempt.MES_API_URL = server.url
    model = LLMModelFactory(provider="mes", provider_model_id="m", config={})
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.error_type == "permanent"
    assert result.error_message == "Model Execution Service refused the request."


def test_a_failing_judge_leaks_nothing_of_its_vendor_into_the_result(owner, one_attempt, leaky):
    judge_server = leaky(500, HTML_PAGE)
    with FakeServer("openai", default_answer="Paris") as answers:
        model = LLMModelFactory(provider="openai_compatible", config={"base_url": answers.base_url})
        LLMModelFactory(name="leaky-judge", provider="openai_compatible", config={"base_url": judge_server.url + "/v1"})
        test_case = TestCaseFactory(evaluation_type="llm_judge", evaluation_config={"judge_model": "leaky-judge"})
        execution = execution_start(test_case=test_case, models=[model], started_by=owner)
        run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.error_type == "judge_error"
    assert_ours(result.error_message)
    assert result.error_message.startswith("The judge model leaky-judge failed (transient)")
    assert_ours(json.dumps(result.evaluation_details))


# --- scorers ---------------------------------------------------------------------------------------------


@register_scorer("test_leaky_crash", config_schema={"type": "object"})
def _leaky_crash(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Crashes with a secret in the exception's text, as a buggy scorer could."""
    raise RuntimeError(f"could not load https://user:{SECRET}@example.com/rubric.json: {HTML_PAGE}")


@register_scorer("test_long_reason", config_schema={"type": "object"})
def _long_reason(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Fails with a reason of its own that is far too long."""
    raise ScoringError("The answer is not acceptable. " * 50, details={"error": "x" * 5000})


def _run_with(owner, scorer: str, **config: Any) -> TestResult:  # type: ignore[no-untyped-def]
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    test_case = TestCaseFactory(evaluation_type="custom", evaluation_config={"scorer": scorer, **config})
    execution = execution_start(test_case=test_case, models=[model], started_by=owner)
    run_executions([execution.pk])
    assert_counters_agree(execution)
    return TestResult.objects.get(execution=execution)


def test_an_exception_inside_a_custom_scorer_is_named_not_stored(owner, caplog):
    with caplog.at_level(logging.ERROR, logger="evaluations.runner.engine"):
        result = _run_with(owner, "test_leaky_crash")
    assert result.status == TestResult.Status.FAILED
    assert result.error_type == "scoring_error"
    assert result.error_message == "The scorer failed with RuntimeError; the details are in the worker log."
    assert_ours(json.dumps(result.evaluation_details))
    assert "Scoring" in caplog.text  # the operator still has the traceback


def test_a_scorers_own_reason_is_cut_to_300_characters_on_write(owner):
    result = _run_with(owner, "test_long_reason")
    assert result.error_message.startswith("The answer is not acceptable.")
    assert len(result.error_message) == MAX and result.error_message.endswith("…")
    assert len(result.evaluation_details["error"]) == MAX


def test_an_invalid_regex_is_reported_by_position_not_by_the_librarys_message(owner):
    result = _run_with(owner, "regex", pattern="(unclosed")
    assert result.error_type == "scoring_error"
    assert result.error_message == "The pattern is not valid at position 9."


def test_schema_violations_are_described_without_quoting_the_answer() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"enum": ["x", "y"]}, "c": {"maxLength": 3}},
        "required": ["a", "d"],
    }
    errors = schema_errors(schema, {"a": SECRET, "b": SECRET, "c": SECRET})
    assert {error["path"]: error["message"] for error in errors} == {
        "$": "'d' is a required property",
        "$.a": "expected integer, got string",
        "$.b": "not one of the allowed values",
        "$.c": "fails maxLength 3",
    }
    assert SECRET not in json.dumps(errors)
