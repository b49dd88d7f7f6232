"""Execution pages: the run button, the execution page with its progress bar, cancel, the runs list."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.api.throttles import RunThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    cache.clear()


@pytest.fixture
def models():
    return [LLMModelFactory(display_name="Atlas"), LLMModelFactory(display_name="Borealis")]


def run(client, test_case, **data):
    return client.post(reverse("evaluations:test-run", args=[test_case.pk]), data)


def test_the_run_button_starts_an_execution_over_every_active_model(client, owner, other_user, models):
    LLMModelFactory(display_name="Retired", is_active=False)
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(other_user)
    response = run(client, test_case)
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("evaluations:execution-detail", args=[execution.pk])
    assert execution.created_by == other_user
    assert execution.test_case == test_case
    assert {m.display_name for m in execution.llm_models.all()} == {"Atlas", "Borealis"}
    assert execution.total_evaluations == 2


def test_it_runs_only_the_ticked_models(client, owner, models):
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    run(client, test_case, models=[str(models[1].pk)])
    assert [m.display_name for m in Execution.objects.get().llm_models.all()] == ["Borealis"]


def test_an_owner_may_run_their_own_pending_test(client, owner, models):
    # On the sandbox models: a test not yet approved runs on those only (SPEC §11).
    LLMModel.objects.filter(pk__in=[model.pk for model in models]).update(sandbox=True)
    test_case = TestCaseFactory(created_by=owner, status="pending", is_public=False)
    client.force_login(owner)
    assert run(client, test_case).status_code == 302
    assert Execution.objects.filter(test_case=test_case).count() == 1


def test_someone_elses_private_test_is_a_404_and_runs_nothing(client, owner, other_user, models):
    test_case = TestCaseFactory(created_by=owner, status="pending", is_public=False)
    client.force_login(other_user)
    assert run(client, test_case).status_code == 404
    assert not Execution.objects.exists()


def test_visitors_are_sent_to_log_in_and_nothing_runs(client, owner, models):
    test_case = TestCaseFactory(created_by=owner)
    response = run(client, test_case)
    assert response.status_code == 302
    assert response.url.startswith("/login/")
    assert not Execution.objects.exists()


def test_a_test_that_may_not_be_run_is_refused_with_a_message(client, owner, moderator, models):
    archived = TestCaseFactory(created_by=owner, status="archived")
    client.force_login(moderator)  # moderators see archived tests, but nobody runs them
    response = run(client, archived)
    assert response.status_code == 302
    assert not Execution.objects.exists()
    page = client.get(response.url).content.decode()
    assert "cannot be run" in page


def test_an_inactive_or_unknown_model_is_refused(client, owner, models):
    retired = LLMModelFactory(is_active=False)
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    response = run(client, test_case, models=[str(retired.pk)])
    assert response.status_code == 302
    assert not Execution.objects.exists()
    assert "Select a valid choice" in client.get(response.url).content.decode()


def test_the_page_shares_the_apis_run_budget(client, owner, models, monkeypatch):
    # DRF reads the rates when the throttle class is defined, so the class attribute is what to change.
    monkeypatch.setattr(RunThrottle, "THROTTLE_RATES", {**RunThrottle.THROTTLE_RATES, "run": "2/min"})
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    assert client.post(f"/api/v1/tests/{test_case.pk}/run", {}, content_type="application/json").status_code == 202
    run(client, test_case)
    response = run(client, test_case)
    assert Execution.objects.count() == 2
    assert "many runs recently" in client.get(response.url).content.decode()


def test_no_active_model_is_an_error_message_not_a_500(client, owner):
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    response = run(client, test_case)
    assert response.status_code == 302
    assert "no active models" in client.get(response.url).content.decode()


# --- execution page -----------------------------------------------------------------------------


def test_the_execution_page_is_for_its_starter_and_moderators(client, owner, other_user, moderator):
    execution = ExecutionFactory(created_by=owner, total_evaluations=4, progress=1, status="running")
    url = reverse("evaluations:execution-detail", args=[execution.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(moderator)
    assert client.get(url).status_code == 200
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert 'aria-valuenow="25"' in page
    assert "width: 25.0%" in page
    assert reverse("execution-detail", args=[execution.pk]) in page  # the JSON the script polls
    assert "js/execution-progress.js" in page
    assert 'http-equiv="refresh"' in page  # without JavaScript the page refreshes itself


def test_a_finished_execution_shows_its_results_and_stops_refreshing(client, owner):
    execution = ExecutionFactory(
        created_by=owner, total_evaluations=1, progress=1, successful_evaluations=1, status="completed"
    )
    TestResultFactory(execution=execution, model=LLMModelFactory(display_name="Atlas"), raw_output="Paris")
    client.force_login(owner)
    page = client.get(reverse("evaluations:execution-detail", args=[execution.pk])).content.decode()
    assert "Atlas" in page and "Paris" in page
    assert 'data-finished="true"' in page
    assert 'http-equiv="refresh"' not in page
    assert "execution-cancel" not in page and "Cancel</button>" not in page


def test_the_progress_json_is_readable_with_the_page_session(client, owner):
    execution = ExecutionFactory(created_by=owner, total_evaluations=2, progress=1, status="running")
    client.force_login(owner)
    data = client.get(reverse("execution-detail", args=[execution.pk])).json()
    assert data["progress_percentage"] == 50.0
    assert data["status"] == "running"


def test_cancel_stops_an_unfinished_execution(client, owner, other_user):
    execution = ExecutionFactory(created_by=owner, status="running", total_evaluations=3)
    url = reverse("evaluations:execution-cancel", args=[execution.pk])
    client.force_login(other_user)
    assert client.post(url).status_code == 404
    client.force_login(owner)
    response = client.post(url)
    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_cancelling_a_finished_execution_is_a_message(client, owner):
    execution = ExecutionFactory(created_by=owner, status="completed")
    client.force_login(owner)
    response = client.post(reverse("evaluations:execution-cancel", args=[execution.pk]))
    assert response.status_code == 302
    assert "already finished" in client.get(response.url).content.decode()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def test_the_runs_list_shows_ones_own_runs_and_filters_by_status(client, owner, other_user, moderator):
    mine = ExecutionFactory(created_by=owner, status="completed")
    ExecutionFactory(created_by=owner, status="failed")
    ExecutionFactory(created_by=other_user, status="completed")
    url = reverse("evaluations:execution-list")
    client.force_login(owner)
    assert len(client.get(url).context["page"].object_list) == 2
    assert list(client.get(url, {"status": "completed"}).context["page"].object_list) == [mine]
    client.force_login(moderator)
    assert len(client.get(url).context["page"].object_list) == 3
