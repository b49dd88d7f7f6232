"""/api/v1/tests/{id}/run and /api/v1/executions: start, list, detail, results, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_key_create
from catalog.models import TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.budgets import budget_of
from evaluations.models import Execution, TestResult
from evaluations.runner.run import run_executions
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.api.throttles import RunThrottle
from openbench.tests.api import (
    EXECUTION_FIELDS,
    V1,
    assert_error,
    client_for,
    ids,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def models() -> list:
    # Sandbox models, so the pending tests below may run on them too (SPEC §11).
    return [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}, sandbox=True) for _ in range(2)]


def ids_of(models: list) -> list[str]:
    return [str(model.pk) for model in models]


def run(client: APIClient, test_case: TestCase, **payload: object):  # type: ignore[no-untyped-def]
    return client.post(f"{V1}/tests/{test_case.pk}/run", payload, format="json")


# --- run ------------------------------------------------------------------------------------------------


def test_running_a_test_answers_202_with_a_pending_execution(owner: User, models: list) -> None:
    test_case = TestCaseFactory()
    response = run(client_for(owner), test_case)
    assert response.status_code == 202
    body = response.json()
    assert list(body) == EXECUTION_FIELDS
    assert body["status"] == "pending"
    assert body["test_case"] == str(test_case.pk)
    assert body["created_by"] == str(owner.pk)
    assert sorted(body["model_ids"]) == sorted(str(model.pk) for model in models)
    assert body["total_evaluations"] == 2
    assert body["progress_percentage"] == 0.0


def test_a_run_posted_with_an_api_key_costs_a_fixed_number_of_queries(
    owner: User, other_user: User, models: list, django_assert_num_queries: Any
) -> None:
    """What each POST of a burst of runs costs (bench many-runs): pinned, so a query added to every run shows."""
    test_case = TestCaseFactory()
    body = {"model_ids": ids_of(models)}
    # The month's first run (someone else's) created the providers' accounts, as in any month after its start.
    assert run(client_for(other_user), test_case, **body).status_code == 202
    _, secret = api_key_create(user=owner, name="ci")
    client = APIClient(headers={"X-API-Key": secret})
    # The key and its last use, the test, the models, may this user run it, the execution and its model links,
    # past answers (the estimate), the user's day account (none yet: UPDATE, then the INSERT that creates it
    # with the reserve), the provider's month (UPDATE), the reservation; the transaction's savepoint and its
    # release. PostgreSQL COPYs the links and the reservation, which Django's query capture does not see.
    first = 12 if connection.vendor == "postgresql" else 14
    with django_assert_num_queries(first):
        response = run(client, test_case, **body)
    assert response.status_code == 202
    body_out = response.json()
    assert body_out["model_ids"] == ids_of(sorted(models, key=lambda model: (model.display_name, model.name)))
    assert (body_out["status"], body_out["judge_calls_avoided"], body_out["judge_cost_saved"]) == ("pending", 0, None)
    # The same key a moment later: its last use is not written again, and the day's account exists.
    with django_assert_num_queries(first - 2):
        assert run(client, test_case, **body).status_code == 202
    assert budget_of(owner).reserved_usd > 0


def test_run_takes_a_subset_of_models(owner: User, models: list) -> None:
    body = run(client_for(owner), TestCaseFactory(), model_ids=[str(models[0].pk)]).json()
    assert body["model_ids"] == [str(models[0].pk)]
    assert body["total_evaluations"] == 1


@pytest.mark.parametrize(
    "model_ids",
    [[], ["not-a-uuid"], ["00000000-0000-0000-0000-000000000000"], "not-a-list"],
)
def test_run_rejects_bad_model_ids(owner: User, models: list, model_ids: object) -> None:
    error = assert_error(run(client_for(owner), TestCaseFactory(), model_ids=model_ids), 400)
    assert "model_ids" in error["details"]
    assert not Execution.objects.exists()


def test_run_rejects_an_inactive_model(owner: User) -> None:
    inactive = LLMModelFactory(is_active=False)
    error = assert_error(run(client_for(owner), TestCaseFactory(), model_ids=[str(inactive.pk)]), 400)
    assert "model_ids" in error["details"]


def test_run_without_any_active_model_is_400(owner: User) -> None:
    assert_error(run(client_for(owner), TestCaseFactory()), 400, "no_models")


def test_anonymous_callers_cannot_run(anonymous: APIClient, models: list) -> None:
    assert_error(run(anonymous, TestCaseFactory()), 401)


def test_a_user_runs_their_own_pending_test_but_not_someone_elses(owner: User, other_user: User, models: list) -> None:
    own = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    theirs = TestCaseFactory(created_by=other_user, status=TestCase.Status.PENDING)
    assert run(client_for(owner), own).status_code == 202
    assert_error(run(client_for(owner), theirs), 404)
    assert list(Execution.objects.values_list("test_case_id", flat=True)) == [own.pk]


def test_a_moderator_may_run_a_pending_test(moderator: User, owner: User, models: list) -> None:
    test_case = TestCaseFactory(created_by=owner, status="pending")
    response = run(client_for(moderator), test_case)
    assert response.status_code == 202
    execution = Execution.objects.get(pk=response.json()["id"])
    assert (execution.test_case, execution.created_by, execution.total_evaluations) == (test_case, moderator, 2)


def test_an_archived_test_cannot_be_run(owner: User, models: list) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.ARCHIVED)
    assert_error(run(client_for(owner), test_case), 409, "not_runnable")


def test_running_is_throttled_per_user(owner: User, other_user: User, models: list, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(RunThrottle, "THROTTLE_RATES", {"run": "2/min"})
    test_case = TestCaseFactory()
    client = client_for(owner)
    assert [run(client, test_case).status_code for _ in range(2)] == [202, 202]
    response = run(client, test_case)
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert run(client_for(other_user), test_case).status_code == 202
    assert client.get(f"{V1}/tests/{test_case.pk}").status_code == 200  # reads are not the run budget


def test_a_run_completes_and_its_results_are_readable(owner: User, models: list) -> None:
    client = client_for(owner)
    test_case = TestCaseFactory(created_by=owner)
    execution_id = run(client, test_case).json()["id"]
    run_executions([execution_id])
    body = client.get(f"{V1}/executions/{execution_id}").json()
    assert body["status"] == "completed"
    assert body["progress"] == body["total_evaluations"] == 2
    assert body["progress_percentage"] == 100.0
    assert body["successful_evaluations"] == 2
    assert body["avg_score"] == 1.0
    assert body["duration_seconds"] is not None
    results = client.get(f"{V1}/executions/{execution_id}/results").json()
    assert results["count"] == 2
    assert {row["model"] for row in results["results"]} == {str(model.pk) for model in models}
    assert all(row["revision"] == test_case.revision for row in results["results"])
    by_test = client.get(f"{V1}/tests/{test_case.pk}/results").json()
    assert by_test["count"] == 2


# --- list and detail -----------------------------------------------------------------------------------


@pytest.fixture
def executions(owner: User, other_user: User) -> dict[str, Execution]:
    return {
        "owner": ExecutionFactory(test_case=TestCaseFactory(created_by=owner), created_by=owner),
        "owner_on_public": ExecutionFactory(test_case=TestCaseFactory(created_by=other_user), created_by=owner),
        "other": ExecutionFactory(
            test_case=TestCaseFactory(created_by=other_user, is_public=False),
            created_by=other_user,
            status=Execution.Status.COMPLETED,
        ),
    }


def test_a_user_lists_only_their_own_executions(owner: User, executions: dict[str, Execution]) -> None:
    response = client_for(owner).get(f"{V1}/executions")
    assert ids(response) == {str(executions["owner"].pk), str(executions["owner_on_public"].pk)}
    assert response.json()["count"] == 2
    assert list(response.json()["results"][0]) == EXECUTION_FIELDS


@pytest.mark.parametrize("persona", ["moderator", "admin_user"])
def test_moderators_list_every_execution(
    request: pytest.FixtureRequest, persona: str, executions: dict[str, Execution]
) -> None:
    response = client_for(request.getfixturevalue(persona)).get(f"{V1}/executions")
    assert ids(response) == {str(execution.pk) for execution in executions.values()}


def test_anonymous_callers_get_401_on_executions(anonymous: APIClient, executions: dict[str, Execution]) -> None:
    assert_error(anonymous.get(f"{V1}/executions"), 401)
    assert_error(anonymous.get(f"{V1}/executions/{executions['owner'].pk}"), 401)


def test_someone_elses_execution_is_404(owner: User, executions: dict[str, Execution]) -> None:
    other = executions["other"]
    client = client_for(owner)
    assert_error(client.get(f"{V1}/executions/{other.pk}"), 404)
    assert_error(client.get(f"{V1}/executions/{other.pk}/results"), 404)
    assert_error(client.post(f"{V1}/executions/{other.pk}/cancel"), 404)


def test_executions_filter_by_status_test_case_and_model(owner: User, executions: dict[str, Execution]) -> None:
    model = LLMModelFactory()
    executions["owner"].llm_models.add(model)
    client = client_for(owner)
    assert ids(client.get(f"{V1}/executions", {"model": str(model.pk)})) == {str(executions["owner"].pk)}
    test_case_id = str(executions["owner_on_public"].test_case_id)
    assert ids(client.get(f"{V1}/executions", {"test_case": test_case_id})) == {str(executions["owner_on_public"].pk)}
    assert ids(client.get(f"{V1}/executions", {"status": "completed"})) == set()
    assert_error(client.get(f"{V1}/executions", {"status": "exploded"}), 400)


def test_execution_list_query_count_is_fixed(moderator: User, owner: User, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    model = LLMModelFactory()
    test_case = TestCaseFactory(created_by=owner)
    for _ in range(6):
        ExecutionFactory(test_case=test_case, created_by=owner).llm_models.add(model)
    client = client_for(moderator)
    with django_assert_num_queries(3):  # count, page, models
        assert client.get(f"{V1}/executions").json()["count"] == 6


def test_execution_results_query_count_is_fixed(owner: User, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    execution = ExecutionFactory(test_case=TestCaseFactory(created_by=owner), created_by=owner)
    for _ in range(4):
        TestResultFactory(execution=execution)
    client = client_for(owner)
    with django_assert_num_queries(3):  # the execution, count, page
        assert client.get(f"{V1}/executions/{execution.pk}/results").json()["count"] == 4


def test_results_never_show_judge_or_provider_internals(owner: User) -> None:
    execution = ExecutionFactory(test_case=TestCaseFactory(created_by=owner), created_by=owner)
    TestResultFactory(execution=execution, provider_request_id="req-internal-123")
    body = client_for(owner).get(f"{V1}/executions/{execution.pk}/results").content.decode()
    assert "req-internal-123" not in body
    assert "judge_cost" not in body


# --- cancel -----------------------------------------------------------------------------------------------


def test_cancelling_a_running_execution(owner: User, executions: dict[str, Execution]) -> None:
    execution = executions["owner"]
    response = client_for(owner).post(f"{V1}/executions/{execution.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert list(response.json()) == EXECUTION_FIELDS
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_cancelling_a_finished_execution_is_409(moderator: User, executions: dict[str, Execution]) -> None:
    finished = executions["other"]
    assert_error(client_for(moderator).post(f"{V1}/executions/{finished.pk}/cancel"), 409)
    finished.refresh_from_db()
    assert finished.status == Execution.Status.COMPLETED


def test_a_moderator_may_cancel_anyones_execution(moderator: User, executions: dict[str, Execution]) -> None:
    execution = executions["owner"]
    response = client_for(moderator).post(f"{V1}/executions/{execution.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_a_cancelled_execution_runs_nothing(owner: User, models: list) -> None:
    client = client_for(owner)
    execution_id = run(client, TestCaseFactory()).json()["id"]
    client.post(f"{V1}/executions/{execution_id}/cancel")
    run_executions([execution_id])
    assert not TestResult.objects.filter(execution_id=execution_id, status=TestResult.Status.COMPLETED).exists()
    assert client.get(f"{V1}/executions/{execution_id}").json()["status"] == "cancelled"


def test_cancel_only_takes_post(owner: User, executions: dict[str, Execution]) -> None:
    assert_error(client_for(owner).get(f"{V1}/executions/{executions['owner'].pk}/cancel"), 405)
