"""/api/v1 suite runs, schedules and alerts: bad input names the field, permissions, run-now."""

from __future__ import annotations

import pytest
from django.utils import timezone

from catalog.models import Suite
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from monitoring.models import Alert, Schedule, SuiteRun
from monitoring.tests.factories import score_drift_alert, suite_of

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def suite() -> Suite:
    return suite_of([TestCaseFactory(), TestCaseFactory()])


@pytest.fixture
def model():
    return LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})


def assert_names(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] in ("validation_error", "invalid", "empty_suite")
    assert field in body["details"], body


# --- POST /suites/{id}/run ------------------------------------------------------------------------------


def test_running_a_suite_starts_one_execution_per_test_and_records_what_it_resolved(client_for, owner, suite, model):
    response = client_for(owner).post(
        f"/api/v1/suites/{suite.pk}/run", {"model_ids": [str(model.pk)], "repeats": 3}, format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    run = SuiteRun.objects.get(pk=body["id"])
    assert len(body["execution_ids"]) == 2
    assert sorted(body["test_ids"]) == sorted(str(test.pk) for test in suite.tests.all())
    assert body["model_ids"] == [str(model.pk)] and body["suite_version"] == suite.version
    assert run.started_by == owner
    executions = Execution.objects.filter(pk__in=body["execution_ids"])
    assert {execution.repeats for execution in executions} == {3}
    assert {execution.created_by_id for execution in executions} == {owner.pk}  # charged to the caller


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"repeats": 0}, "repeats"),
        ({"repeats": 21}, "repeats"),
        ({"repeats": "x"}, "repeats"),
        ({"model_ids": [UNKNOWN]}, "model_ids"),
        ({"model_ids": ["nope"]}, "model_ids"),
        ({"model_ids": []}, "model_ids"),
    ],
)
def test_bad_suite_run_input_is_a_400_naming_the_field(client_for, owner, suite, model, payload, field):
    assert_names(client_for(owner).post(f"/api/v1/suites/{suite.pk}/run", payload, format="json"), field)
    assert not Execution.objects.exists()


def test_a_suite_with_no_runnable_test_is_a_400_naming_suite(client_for, owner, model):
    empty = Suite.objects.create(name="empty")
    assert_names(client_for(owner).post(f"/api/v1/suites/{empty.pk}/run", {}, format="json"), "suite")
    assert not SuiteRun.objects.exists()


def test_running_a_suite_needs_an_account_and_an_existing_suite(client_for, owner, suite):
    assert client_for(None).post(f"/api/v1/suites/{suite.pk}/run", {}, format="json").status_code == 401
    assert client_for(owner).post(f"/api/v1/suites/{UNKNOWN}/run", {}, format="json").status_code == 404


# --- schedules ------------------------------------------------------------------------------------------


def test_moderators_create_edit_list_and_delete_schedules(client_for, moderator, suite, model):
    api = client_for(moderator)
    created = api.post(
        "/api/v1/schedules",
        {"suite": str(suite.pk), "model_ids": [str(model.pk)], "cron": "0 3 * * *", "repeats": 2},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["model_ids"] == [str(model.pk)] and body["repeats"] == 2 and body["is_active"] is True
    assert body["next_run_at"] is not None and "T03:00:00" in body["next_run_at"]

    edited = api.patch(f"/api/v1/schedules/{body['id']}", {"is_active": False}, format="json")
    assert edited.status_code == 200
    assert edited.json()["next_run_at"] is None and edited.json()["repeats"] == 2
    assert api.get("/api/v1/schedules").json()["count"] == 1
    assert api.delete(f"/api/v1/schedules/{body['id']}").status_code == 204
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),  # valid fields, but 31 February never comes
        ({"repeats": 0}, "repeats"),
        ({"repeats": 21}, "repeats"),
        ({"model_ids": [UNKNOWN]}, "model_ids"),
        ({"model_ids": ["inactive"]}, "model_ids"),
        ({"suite": UNKNOWN}, "suite"),
    ],
)
def test_bad_schedule_input_is_a_400_naming_the_field(client_for, moderator, suite, payload, field):
    if payload.get("model_ids") == ["inactive"]:
        payload = {"model_ids": [str(LLMModelFactory(is_active=False).pk)]}
    data = {"suite": str(suite.pk), "cron": "*/5 * * * *", **payload}
    assert_names(client_for(moderator).post("/api/v1/schedules", data, format="json"), field)
    assert not Schedule.objects.exists()


def test_a_bad_cron_in_an_edit_is_a_400_naming_cron(client_for, moderator, suite):
    schedule = Schedule.objects.create(suite=suite, cron="0 * * * *")
    assert_names(
        client_for(moderator).patch(f"/api/v1/schedules/{schedule.pk}", {"cron": "0 25 * * *"}, format="json"), "cron"
    )


def test_users_may_not_touch_schedules_or_alerts(client_for, owner, suite, model):
    schedule = Schedule.objects.create(suite=suite, cron="0 * * * *")
    run = SuiteRun.objects.create(suite=suite, suite_version=1, schedule=schedule)
    alert = Alert.objects.create(
        kind="score_drift", model=model, schedule=schedule, suite_run=run, shared_tests=1, method="mcnemar_exact"
    )
    for api, expected in ((client_for(owner), 403), (client_for(None), 401)):
        assert api.get("/api/v1/schedules").status_code == expected
        assert (
            api.post("/api/v1/schedules", {"suite": str(suite.pk), "cron": "0 * * * *"}, format="json").status_code
            == expected
        )
        assert (
            api.patch(f"/api/v1/schedules/{schedule.pk}", {"is_active": False}, format="json").status_code == expected
        )
        assert api.delete(f"/api/v1/schedules/{schedule.pk}").status_code == expected
        assert api.post(f"/api/v1/schedules/{schedule.pk}/run-now").status_code == expected
        assert api.get("/api/v1/alerts").status_code == expected
        assert api.post(f"/api/v1/alerts/{alert.pk}/acknowledge").status_code == expected
    assert Schedule.objects.get().is_active and Alert.objects.get().acknowledged_at is None
    assert not SuiteRun.objects.exclude(pk=run.pk).exists()


def test_run_now_starts_a_run_of_the_schedule_charged_to_the_platform(client_for, moderator, suite, model):
    schedule = Schedule.objects.create(suite=suite, cron="0 3 * * *", repeats=2)
    schedule.llm_models.set([model])

    response = client_for(moderator).post(f"/api/v1/schedules/{schedule.pk}/run-now")

    assert response.status_code == 202, response.content
    run = SuiteRun.objects.get(pk=response.json()["id"])
    assert run.schedule == schedule and run.tick_at is None and run.started_by == moderator
    assert {execution.created_by_id for execution in run.executions.all()} == {None}
    assert {execution.repeats for execution in run.executions.all()} == {2}


def test_a_schedule_of_an_unknown_id_is_a_404(client_for, moderator):
    assert client_for(moderator).post(f"/api/v1/schedules/{UNKNOWN}/run-now").status_code == 404


# --- alerts ---------------------------------------------------------------------------------------------


def test_moderators_list_filter_and_acknowledge_alerts(client_for, moderator, suite, model):
    other = LLMModelFactory()
    run = SuiteRun.objects.create(suite=suite, suite_version=1)
    first = score_drift_alert(model=model, run=run, current_execution_ids=["a"], previous_execution_ids=["b"])
    Alert.objects.create(
        kind="error_rate",
        model=other,
        suite_run=run,
        shared_tests=20,
        previous_score=0.0,
        current_score=0.5,
        delta=0.5,
        method="error_rate",
    )
    api = client_for(moderator)

    listed = api.get("/api/v1/alerts").json()
    assert listed["count"] == 2
    assert set(listed["results"][0]) == {
        "id",
        "kind",
        "model",
        "schedule",
        "previous_execution_ids",
        "current_execution_ids",
        "shared_tests",
        "previous_score",
        "current_score",
        "delta",
        "p_value",
        "method",
        "created_at",
        "acknowledged_at",
    }
    assert [a["id"] for a in api.get(f"/api/v1/alerts?model={model.pk}").json()["results"]] == [str(first.pk)]

    acknowledged = api.post(f"/api/v1/alerts/{first.pk}/acknowledge")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_at"] is not None
    assert [a["id"] for a in api.get("/api/v1/alerts?acknowledged=true").json()["results"]] == [str(first.pk)]
    assert api.get("/api/v1/alerts?acknowledged=false").json()["count"] == 1
    first.refresh_from_db()
    when = first.acknowledged_at
    api.post(f"/api/v1/alerts/{first.pk}/acknowledge")
    first.refresh_from_db()
    assert first.acknowledged_at == when and first.acknowledged_by == moderator


def test_a_bad_alert_filter_is_a_400_naming_it(client_for, moderator):
    assert_names(client_for(moderator).get("/api/v1/alerts?model=nope"), "model")
    assert_names(client_for(moderator).get("/api/v1/alerts?acknowledged=maybe"), "acknowledged")
    assert timezone.now()
