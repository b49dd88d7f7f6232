"""Request ids: taken from X-Request-ID or generated, returned, and written on every log line."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from openbench.logging import RequestIdFilter, get_request_id, request_id_context


def test_a_request_id_is_generated_and_returned() -> None:
    response = Client().get("/health")
    assert len(response["X-Request-ID"]) == 32


def test_a_clients_request_id_is_kept() -> None:
    response = Client().get("/health", HTTP_X_REQUEST_ID="trace-abc.123")
    assert response["X-Request-ID"] == "trace-abc.123"


def test_an_unsafe_request_id_is_replaced() -> None:
    response = Client().get("/health", HTTP_X_REQUEST_ID="evil\nheader" + "x" * 200)
    assert response["X-Request-ID"] != "evil\nheader" and len(response["X-Request-ID"]) == 32


def test_log_lines_are_json_with_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("openbench.test")
    logger.addHandler(handler)
    try:
        with request_id_context("req-42"):
            assert get_request_id() == "req-42"
            logger.warning("scored %s", "one")
        assert get_request_id() == ""
    finally:
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["request_id"] == "req-42" and line["message"] == "scored one"


def test_djangos_request_log_carries_the_id_of_the_request_it_logs() -> None:
    from types import SimpleNamespace

    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found", None, None)
    record.request = SimpleNamespace(request_id="req-from-request")
    assert RequestIdFilter().filter(record)
    assert record.request_id == "req-from-request"
