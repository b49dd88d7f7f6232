"""Helpers shared by the API tests: throttle isolation, envelope checks, personas by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

V1 = "/api/v1"

# The SPEC §7 shapes, written out here (not imported from the serializers) so the tests can catch a drift.
EXECUTION_FIELDS = [
    "id",
    "test_case",
    "created_by",
    "model_ids",
    "repeats",  # SPEC §12
    "status",
    "progress",
    "total_evaluations",
    "progress_percentage",
    "successful_evaluations",
    "failed_evaluations",
    "avg_score",
    "avg_latency_ms",
    "total_cost",
    "error_message",
    "created_at",
    "started_at",
    "completed_at",
    "duration_seconds",
    # SPEC §13: what the cascade saved.
    "judge_calls_avoided",
    "judge_cost_saved",
]
RESULT_FIELDS = [
    "id",
    "execution",
    "test_case",
    "revision",
    "model",
    "sample",  # SPEC §12
    "status",
    "is_correct",
    "score",
    "raw_output",
    "parsed_output",
    "evaluation_details",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "cached",
    "attempts",
    "error_type",
    "error_message",
    "executed_at",
]
# SPEC §3 fields of a test case, as the API reads them.
TEST_CASE_FIELDS = {
    "id", "title", "description", "category", "tags", "difficulty", "language", "prompt", "system_prompt",
    "expected_output", "output_schema", "evaluation_type", "evaluation_config", "timeout_seconds", "is_public",
    "status", "moderated_by", "moderation_notes", "approved_at", "revision", "created_by", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture(autouse=True)
def reset_throttles() -> Iterator[None]:
    """Throttle counters live in the cache (Redis when configured): start and end every test clean.

    (The fast password hasher these tests rely on is set for the whole suite by the root conftest.)
    """
    cache.clear()
    yield
    cache.clear()


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the one error envelope with this status (and code); returns the inner error."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    if code is not None:
        assert error["code"] == code
    return error


def client_for(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ids(response: Any) -> set[str]:
    return {row["id"] for row in response.json()["results"]}
