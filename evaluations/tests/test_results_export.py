"""GET /api/v1/results/export (SPEC §14): streamed CSV / JSON lines, the results lists' filters, and the
one visibility rule (a private test's results never reach another user; anonymous callers only approved
public tests' results)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from catalog.models import TestCase
from catalog.tests.factories import TestCaseFactory
from evaluations.tests.factories import ExecutionFactory, TestResultFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/results/export"


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def exported_ids(client, **params) -> set[str]:
    response = client.get(URL, {"format": "jsonl", **params})
    assert response.status_code == 200
    return {json.loads(line)["id"] for line in body(response).splitlines()}


@pytest.fixture
def results(owner, other_user):
    public = TestResultFactory(execution=ExecutionFactory(test_case=TestCaseFactory(created_by=other_user)))
    private = TestResultFactory(
        execution=ExecutionFactory(test_case=TestCaseFactory(created_by=other_user, is_public=False))
    )
    pending = TestResultFactory(
        execution=ExecutionFactory(test_case=TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING))
    )
    return {"public": str(public.pk), "private": str(private.pk), "own_pending": str(pending.pk)}


def test_each_caller_gets_only_what_they_may_see(results, client_for, owner, other_user, moderator, anonymous):
    assert exported_ids(anonymous) == {results["public"]}
    assert exported_ids(client_for(owner)) == {results["public"], results["own_pending"]}
    assert exported_ids(client_for(other_user)) == {results["public"], results["private"]}
    assert exported_ids(client_for(moderator)) == set(results.values())


def test_an_anonymous_export_stops_at_the_row_limit_and_says_so(results, client_for, moderator, anonymous, settings):
    for _ in range(2):
        TestResultFactory(execution=ExecutionFactory(test_case=TestCaseFactory()))
    settings.RESULTS_EXPORT_ANONYMOUS_MAX_ROWS = 2
    response = anonymous.get(URL, {"format": "jsonl"})
    assert response["X-Export-Row-Limit"] == "2"
    assert len(body(response).splitlines()) == 2
    # Signed-in callers are throttled and known: no limit.
    assert len(exported_ids(client_for(moderator))) == 5


def test_a_filter_cannot_reach_past_visibility(results, client_for, owner):
    private_test = TestCase.objects.get(results__pk=results["private"])
    assert exported_ids(client_for(owner), test_case=str(private_test.pk)) == set()


def test_filters_of_the_results_lists_and_executions(results, client_for, moderator):
    client = client_for(moderator)
    own = TestCase.objects.get(results__pk=results["own_pending"])
    assert exported_ids(client, test_case=str(own.pk)) == {results["own_pending"]}
    execution = own.results.get().execution_id
    assert exported_ids(client, execution=str(execution)) == {results["own_pending"]}
    model = own.results.get().model_id
    assert exported_ids(client, model=str(model)) == {results["own_pending"]}
    assert exported_ids(client, status="failed") == set()
    response = client.get(URL, {"format": "jsonl", "test_case": "not-a-uuid"})
    assert response.status_code == 400 and "test_case" in response.json()["error"]["details"]


@pytest.mark.parametrize("fmt", ["xml", ""])
def test_an_unknown_format_is_400_naming_format(anonymous, fmt):
    response = anonymous.get(URL, {"format": fmt} if fmt else {})
    assert response.status_code == 400
    assert "format" in response.json()["error"]["details"]


def test_csv_is_streamed_and_formula_safe(client_for, moderator):
    result = TestResultFactory(raw_output="=cmd|' /C calc'!A0", score=-0.0)
    result.test_case.title = "@SUM(A1)"
    result.test_case.save(update_fields=["title"])
    response = client_for(moderator).get(URL, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="results.csv"' in response["Content-Disposition"]
    (row,) = csv.DictReader(io.StringIO(body(response)))
    assert row["raw_output"] == "'=cmd|' /C calc'!A0"
    assert row["test_title"] == "'@SUM(A1)"
    assert row["id"] == str(result.pk)


def test_a_large_export_reads_in_chunks(client_for, moderator, django_assert_max_num_queries):
    TestResultFactory.create_batch(30)
    with django_assert_max_num_queries(4):
        response = client_for(moderator).get(URL, {"format": "jsonl"})
        lines = body(response).splitlines()
    assert len(lines) == 30


def test_pages_link_to_the_export_with_their_filter(client, owner):
    result = TestResultFactory(execution=ExecutionFactory(test_case=TestCaseFactory(created_by=owner)))
    client.force_login(owner)
    pages = {
        "/leaderboard/": f"{URL}?format=csv",
        f"/tests/{result.test_case_id}/": f"{URL}?format=csv&amp;test_case={result.test_case_id}",
        f"/executions/{result.execution_id}/": f"{URL}?format=jsonl&amp;execution={result.execution_id}",
    }
    for page, link in pages.items():
        response = client.get(page)
        assert response.status_code == 200, page
        assert f'href="{link}"' in response.content.decode(), page
    # The link works with the page's session: the owner downloads their own test's results.
    response = client.get(URL, {"format": "jsonl", "execution": str(result.execution_id)})
    assert json.loads(body(response))["id"] == str(result.pk)


def test_exports_have_their_own_budget_per_caller(results, client_for, owner, other_user, anonymous, monkeypatch):
    from openbench.api.throttles import ExportThrottle

    # A signed-in export streams every row the caller may see, holding a web worker meanwhile.
    monkeypatch.setattr(ExportThrottle, "THROTTLE_RATES", {"export": "2/hour"})
    for _ in range(2):
        assert client_for(owner).get(URL, {"format": "csv"}).status_code == 200

    refused = client_for(owner).get(URL, {"format": "csv"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert "Retry-After" in refused
    assert client_for(other_user).get(URL, {"format": "csv"}).status_code == 200  # another caller's budget
    assert anonymous.get(URL, {"format": "csv"}).status_code == 200
