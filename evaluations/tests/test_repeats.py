"""Repeats (SPEC §12): a run samples each (test, model) k times; results carry their sample."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import run_estimate
from evaluations.models import Execution, SpendReservation
from evaluations.services import execution_start, executions_start_batch
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

BAD_REPEATS = [0, 21, -1, "x", "3", None, True, 2.5]


def test_a_run_stores_its_repeats_and_counts_one_evaluation_per_sample(owner: User) -> None:
    models = [LLMModelFactory() for _ in range(2)]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=3)
    execution.refresh_from_db()
    assert execution.repeats == 3
    assert execution.total_evaluations == 6


def test_repeats_default_to_one(owner: User) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory()], started_by=owner)
    assert execution.repeats == 1
    assert execution.total_evaluations == 1


def test_a_batch_stores_its_repeats_on_every_execution(owner: User) -> None:
    models = [LLMModelFactory() for _ in range(3)]
    started = executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(2)], models=models, started_by=owner, repeats=20
    )
    stored = Execution.objects.filter(pk__in=[execution.pk for execution in started])
    assert sorted(stored.values_list("repeats", "total_evaluations")) == [(20, 60), (20, 60)]


def test_the_budget_reservation_covers_every_sample(owner: User) -> None:
    models = [LLMModelFactory()]
    test_case = TestCaseFactory()
    once = run_estimate(test_cases=[test_case], models=models).total_usd
    execution = execution_start(test_case=test_case, models=models, started_by=owner, repeats=4)
    reserved = sum((r.reserved_usd for r in SpendReservation.objects.filter(execution=execution)), Decimal(0))
    assert once > 0
    assert reserved == pytest.approx(4 * once, rel=Decimal("1e-6"))


@pytest.mark.parametrize("repeats", BAD_REPEATS)
def test_repeats_outside_one_to_twenty_are_refused_naming_the_field_and_nothing_is_created(
    owner: User, repeats: object
) -> None:
    models = [LLMModelFactory()]
    with pytest.raises(ApplicationError) as refused:
        execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=repeats)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert list(refused.value.details) == ["repeats"]
    with pytest.raises(ApplicationError) as refused_batch:
        executions_start_batch(test_cases=[TestCaseFactory()], models=models, started_by=owner, repeats=repeats)  # type: ignore[arg-type]
    assert list(refused_batch.value.details) == ["repeats"]
    assert not Execution.objects.exists()
    assert not SpendReservation.objects.exists()


# --- the API: POST /tests/{id}/run, the estimate, the execution and result shapes -------------------------

from rest_framework.test import APIClient  # noqa: E402

from catalog.models import TestCase  # noqa: E402
from evaluations.runner.run import run_executions  # noqa: E402
from openbench.tests.api import V1, assert_error, client_for, reset_throttles  # noqa: E402, F401 - autouse fixture

API_BAD_REPEATS = [0, 21, -3, "x", None, True, 2.5, [2], {"k": 2}]


def _run(client: APIClient, test_case: TestCase, **payload: object):  # type: ignore[no-untyped-def]
    return client.post(f"{V1}/tests/{test_case.pk}/run", payload, format="json")


def test_a_run_with_repeats_shows_them_and_its_results_carry_their_sample(owner: User) -> None:
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(2)]
    client = client_for(owner)
    response = _run(client, TestCaseFactory(), repeats=3)
    assert response.status_code == 202
    body = response.json()
    assert (body["repeats"], body["total_evaluations"]) == (3, 6)
    run_executions([body["id"]])
    detail = client.get(f"{V1}/executions/{body['id']}").json()
    assert (detail["repeats"], detail["progress"], detail["status"]) == (3, 6, "completed")
    rows = client.get(f"{V1}/executions/{body['id']}/results").json()["results"]
    assert sorted((row["model"], row["sample"]) for row in rows) == sorted(
        (str(model.pk), sample) for model in models for sample in range(3)
    )


def test_a_run_without_repeats_samples_once(owner: User) -> None:
    LLMModelFactory()
    body = _run(client_for(owner), TestCaseFactory()).json()
    assert (body["repeats"], body["total_evaluations"]) == (1, 1)


@pytest.mark.parametrize("repeats", API_BAD_REPEATS)
def test_the_run_endpoint_refuses_bad_repeats_with_400_naming_the_field(owner: User, repeats: object) -> None:
    LLMModelFactory()
    error = assert_error(_run(client_for(owner), TestCaseFactory(), repeats=repeats), 400)
    assert list(error["details"]) == ["repeats"]
    assert not Execution.objects.exists()


@pytest.mark.parametrize("repeats", API_BAD_REPEATS)
def test_the_estimate_endpoint_refuses_bad_repeats_with_400_naming_the_field(owner: User, repeats: object) -> None:
    LLMModelFactory()
    test = TestCaseFactory()
    response = client_for(owner).post(
        f"{V1}/executions/estimate", {"test_ids": [str(test.pk)], "repeats": repeats}, format="json"
    )
    assert list(assert_error(response, 400)["details"]) == ["repeats"]


def test_the_estimate_endpoint_multiplies_by_repeats(owner: User) -> None:
    LLMModelFactory()
    test = TestCaseFactory()
    client = client_for(owner)
    once = client.post(f"{V1}/executions/estimate", {"test_ids": [str(test.pk)]}, format="json").json()
    five = client.post(f"{V1}/executions/estimate", {"test_ids": [str(test.pk)], "repeats": 5}, format="json").json()
    assert five["evaluations"] == 5 * once["evaluations"]
    assert Decimal(five["cost_usd"]) == pytest.approx(5 * Decimal(once["cost_usd"]), rel=Decimal("1e-6"))


# --- run_batch --repeats --------------------------------------------------------------------------------

from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402

from evaluations.models import TestResult  # noqa: E402
from evaluations.tests.conftest import drain_background_work  # noqa: E402
from evaluations.tests.factories import TestResultFactory  # noqa: E402


@pytest.mark.django_db(transaction=True)
def test_run_batch_samples_each_model_k_times(owner: User, clean_queue: None) -> None:
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 1}) for _ in range(2)]
    test = TestCaseFactory()
    names = ",".join(model.name for model in models)
    # With Redis the command queues the run for the workers (drained here); without, it runs in-process.
    call_command("run_batch", "--tests", str(test.pk), "--models", names, "--repeats", "3", "--yes")
    drain_background_work()
    execution = Execution.objects.get()
    assert (execution.repeats, execution.total_evaluations, execution.progress) == (3, 6, 6)
    assert execution.status == Execution.Status.COMPLETED
    assert sorted(TestResult.objects.values_list("sample", flat=True)) == [0, 0, 1, 1, 2, 2]


def test_run_batch_estimates_k_samples(owner: User, capsys: pytest.CaptureFixture[str]) -> None:
    model = LLMModelFactory()
    test = TestCaseFactory()
    call_command("run_batch", "--tests", str(test.pk), "--models", model.name, "--repeats", "4", "--estimate")
    assert run_estimate(test_cases=[test], models=[model], repeats=4).evaluations == 4
    assert f"{'total':40} {4:>7}" in capsys.readouterr().out
    assert not Execution.objects.exists()


@pytest.mark.parametrize("argument", ["0", "21", "x", "2.5", "-1"])
def test_run_batch_refuses_bad_repeats_on_the_command_line(owner: User, argument: str) -> None:
    test = TestCaseFactory()
    with pytest.raises(CommandError, match="repeats"):
        call_command("run_batch", "--tests", str(test.pk), "--repeats", argument, "--yes")
    assert not Execution.objects.exists()


@pytest.mark.parametrize("value", [None, 0, 21, "3"])
def test_run_batch_refuses_bad_repeats_given_as_options(owner: User, value: object) -> None:
    with pytest.raises(CommandError, match="--repeats"):
        call_command("run_batch", repeats=value, yes=True)
    assert not Execution.objects.exists()


# --- the run form on the test page ----------------------------------------------------------------------

from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402


def _run_page(client: Client, test_case: TestCase, **data: object):  # type: ignore[no-untyped-def]
    return client.post(reverse("evaluations:test-run", args=[test_case.pk]), data)


def test_the_run_form_starts_k_samples_per_model(client: Client, owner: User) -> None:
    LLMModelFactory()
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    page = client.get(reverse("catalog:test-detail", args=[test_case.pk])).content.decode()
    assert 'name="repeats"' in page and 'min="1"' in page and 'max="20"' in page
    assert _run_page(client, test_case, repeats="4").status_code == 302
    execution = Execution.objects.get()
    assert (execution.repeats, execution.total_evaluations) == (4, 4)


def test_the_run_form_without_repeats_samples_once(client: Client, owner: User) -> None:
    LLMModelFactory()
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    _run_page(client, test_case, repeats="")
    assert Execution.objects.get().repeats == 1


@pytest.mark.parametrize("repeats", ["0", "21", "x", "2.5", "-1"])
def test_the_run_form_refuses_bad_repeats_with_a_field_error(client: Client, owner: User, repeats: str) -> None:
    LLMModelFactory()
    test_case = TestCaseFactory(created_by=owner)
    client.force_login(owner)
    response = _run_page(client, test_case, repeats=repeats)
    assert response.status_code == 302
    assert not Execution.objects.exists()
    assert "Samples per model: " in client.get(response.url).content.decode()


def test_the_execution_page_shows_samples_and_waits_for_models_missing_some(client: Client, owner: User) -> None:
    done, partial = LLMModelFactory(display_name="Done"), LLMModelFactory(display_name="Partial")
    execution = execution_start(test_case=TestCaseFactory(), models=[done, partial], started_by=owner, repeats=2)
    for model, sample in [(done, 0), (done, 1), (partial, 1)]:
        TestResultFactory(execution=execution, model=model, sample=sample, raw_output=f"{model.display_name} #{sample}")
    client.force_login(owner)
    html = client.get(reverse("evaluations:execution-detail", args=[execution.pk])).content.decode()
    assert "2 samples per model" in html
    assert '<th class="num">Sample</th>' in html
    assert "Partial #1" in html and "Done #0" in html and "Done #1" in html
    assert "Waiting for: Partial." in html


def test_the_admin_lists_repeats_and_samples(client: Client, admin_user: User) -> None:
    admin = admin_user
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory()], started_by=admin, repeats=3)
    TestResultFactory(execution=execution, model=execution.llm_models.get(), sample=2)
    client.force_login(admin)
    executions = client.get(reverse("admin:evaluations_execution_changelist")).content.decode()
    assert "column-repeats" in executions and ">3</td>" in executions
    results = client.get(reverse("admin:evaluations_testresult_changelist")).content.decode()
    assert "column-sample" in results and ">2</td>" in results
