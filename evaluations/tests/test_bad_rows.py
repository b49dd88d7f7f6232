"""SPEC §10, "writes never lose a batch to one bad row": text the database refuses (NUL, lone surrogates,
\\u0000 in jsonb) is replaced before the COPY, and a row still refused fails alone, with a reason we wrote,
while the rest of the batch and the counters stay right. Run on SQLite and on PostgreSQL (where the COPY
refuses a NUL, and where it matters)."""

from __future__ import annotations

import logging
import math
from decimal import Decimal

import pytest
from django.db import connection

from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.run import run_executions
from evaluations.runner.writes import claim_executions, write_results
from evaluations.services import execution_start
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from evaluations.tests.test_runner import assert_counters_agree
from openbench.bulk import REPLACEMENT, clean_json, clean_text, insert_rows
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

NUL = "\x00"


def _fake_models(server: FakeServer, names: list[str]) -> list[LLMModel]:
    return [
        LLMModelFactory(provider="openai_compatible", provider_model_id=name, config={"base_url": server.base_url})
        for name in names
    ]


@pytest.fixture
def no_cache(settings):  # type: ignore[no-untyped-def]
    settings.EVAL_CACHE = False
    return settings


# --- a real run against the fake OpenAI-compatible server ---------------------------------------------


def test_an_answer_with_a_nul_is_stored_with_it_replaced_and_the_rest_of_the_batch_is_saved(owner, no_cache):
    answers = {"nul": f"Par{NUL}is", "plain-1": "Paris", "plain-2": "Paris", "wrong": "Lyon"}
    with FakeServer("openai", answer_fn=lambda model, prompt: answers[model]) as server:
        models = _fake_models(server, list(answers))
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        report = run_executions([execution.pk])

    assert report.results == 4
    stored = {result.model.provider_model_id: result for result in TestResult.objects.filter(execution=execution)}
    assert set(stored) == set(answers)
    assert stored["nul"].raw_output == f"Par{REPLACEMENT}is"
    assert stored["nul"].status == TestResult.Status.COMPLETED
    assert stored["plain-1"].raw_output == "Paris" and stored["plain-1"].score == 1.0
    assert stored["wrong"].score == 0.0
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert (execution.progress, execution.successful_evaluations, execution.failed_evaluations) == (4, 4, 0)
    assert_counters_agree(execution)


def test_nul_and_lone_surrogates_inside_parsed_json_are_replaced_in_the_jsonb_columns(owner, no_cache):
    # The answers' text is clean; the JSON they hold decodes to a NUL or a lone surrogate, which lands in
    # parsed_output and evaluation_details (jsonb refuses \u0000 and an unpaired \ud800).
    answers = {
        "nul-in-json": '{"city": "Par\\u0000is"}',
        "surrogate-in-json": '{"city": "Par\\ud800is"}',
        "clean-json": '{"city": "Paris"}',
    }
    test_case = TestCaseFactory(evaluation_type="custom", evaluation_config={"scorer": "json_path", "path": "$.city"})
    with FakeServer("openai", answer_fn=lambda model, prompt: answers[model]) as server:
        models = _fake_models(server, list(answers))
        execution = execution_start(test_case=test_case, models=models, started_by=owner)
        run_executions([execution.pk])

    stored = {result.model.provider_model_id: result for result in TestResult.objects.filter(execution=execution)}
    assert set(stored) == set(answers)
    assert stored["nul-in-json"].parsed_output == {"city": f"Par{REPLACEMENT}is"}
    assert stored["nul-in-json"].evaluation_details["value"] == f"Par{REPLACEMENT}is"
    assert stored["surrogate-in-json"].parsed_output == {"city": f"Par{REPLACEMENT}is"}
    assert stored["clean-json"].parsed_output == {"city": "Paris"} and stored["clean-json"].score == 1.0
    assert_counters_agree(execution)


# --- the write path ------------------------------------------------------------------------------------


def _claimed(owner, models: list[LLMModel], lease: str = "lease-1") -> Execution:  # type: ignore[no-untyped-def]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    assert claim_executions([str(execution.pk)], lease=lease) == [str(execution.pk)]
    return execution


def test_refused_characters_in_every_text_and_json_column_are_replaced_on_write(owner) -> None:
    (model,) = LLMModelFactory.create_batch(1)
    execution = _claimed(owner, [model])
    result = TestResultFactory.build(
        execution=execution,
        model=model,
        raw_output=f"a{NUL}b\ud800c",
        parsed_output={f"k{NUL}": [f"v{NUL}", "\udfff", 1.5, None, math.inf]},
        evaluation_details={"note": f"x{NUL}y"},
        error_message=f"e{NUL}",
        provider_request_id=f"req{NUL}",
        finish_reason=f"stop{NUL}",
    )

    lost, saved = write_results(lease="lease-1", results=[result], finished=[str(execution.pk)])

    assert lost == set() and saved == [result]
    stored = TestResult.objects.get(pk=result.pk)
    assert stored.raw_output == f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert stored.parsed_output == {f"k{REPLACEMENT}": [f"v{REPLACEMENT}", REPLACEMENT, 1.5, None, "Infinity"]}
    assert stored.evaluation_details == {"note": f"x{REPLACEMENT}y"}
    assert stored.error_message == f"e{REPLACEMENT}"
    assert stored.provider_request_id == f"req{REPLACEMENT}"
    assert stored.finish_reason == f"stop{REPLACEMENT}"
    # The instance holds what the row holds.
    assert result.raw_output == stored.raw_output and result.parsed_output == stored.parsed_output


def test_a_row_the_database_refuses_fails_alone_with_our_reason_and_the_counters_agree(owner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BUDGET_OVERRUN_FACTOR = 10_000  # the made-up costs below are far above the run's estimate
    models = LLMModelFactory.create_batch(3)
    first, second = _claimed(owner, models), _claimed(owner, models)
    good = [TestResultFactory.build(execution=first, model=model, cost=Decimal("0.01")) for model in models]
    # A score of 2 breaks the result_score_range constraint: the whole COPY is refused.
    bad = TestResultFactory.build(execution=second, model=models[0], score=2.0, raw_output="an answer")
    others = [TestResultFactory.build(execution=second, model=model, score=0.5) for model in models[1:]]

    lost, saved = write_results(lease="lease-1", results=[*good, bad, *others], finished=[])

    assert lost == set()
    assert len(saved) == 6
    assert TestResult.objects.filter(execution=first, status=TestResult.Status.COMPLETED).count() == 3
    refused = TestResult.objects.get(execution=second, model=models[0])
    assert refused.pk != bad.pk
    assert refused.status == TestResult.Status.FAILED
    assert refused.error_type == "storage_error"
    assert refused.error_message.startswith("The database refused this result (a constraint does not hold)")
    assert refused.raw_output == "" and refused.score is None
    assert refused in saved
    assert TestResult.objects.filter(execution=second, status=TestResult.Status.COMPLETED, score=0.5).count() == 2
    for execution in (first, second):
        assert_counters_agree(execution)
    second.refresh_from_db()
    assert (second.progress, second.successful_evaluations, second.failed_evaluations) == (3, 2, 1)


def test_a_result_that_exists_already_and_a_refused_row_in_one_batch_are_both_handled(owner) -> None:
    models = LLMModelFactory.create_batch(3)
    execution = _claimed(owner, models)
    write_results(lease="lease-1", results=[TestResultFactory.build(execution=execution, model=models[0])], finished=[])

    again = TestResultFactory.build(execution=execution, model=models[0])
    bad = TestResultFactory.build(execution=execution, model=models[1], cost=Decimal("-1"))
    fine = TestResultFactory.build(execution=execution, model=models[2])
    lost, saved = write_results(lease="lease-1", results=[again, bad, fine], finished=[str(execution.pk)])

    assert lost == set()
    assert {result.model_id for result in saved} == {models[1].pk, models[2].pk}
    assert TestResult.objects.filter(execution=execution).count() == 3
    assert TestResult.objects.get(execution=execution, model=models[1]).error_type == "storage_error"
    assert_counters_agree(execution)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def test_a_row_that_cannot_be_stored_even_as_a_failure_is_logged_and_left_out_of_the_counters(owner, caplog) -> None:
    models = LLMModelFactory.create_batch(2)
    execution = _claimed(owner, models)
    # A negative revision breaks the column's own check, which the failed result carries too.
    hopeless = TestResultFactory.build(execution=execution, model=models[0], revision=-1)
    fine = TestResultFactory.build(execution=execution, model=models[1])

    with caplog.at_level(logging.WARNING, logger="evaluations.runner.writes"):
        lost, saved = write_results(lease="lease-1", results=[hopeless, fine], finished=[])

    assert lost == set() and saved == [fine]
    assert list(TestResult.objects.filter(execution=execution)) == [fine]
    assert "Not even a failed result could be stored" in caplog.text
    assert_counters_agree(execution)


def test_the_slow_path_still_drops_the_results_of_an_execution_whose_lease_was_lost(owner) -> None:
    models = LLMModelFactory.create_batch(2)
    ours = _claimed(owner, models, lease="ours")
    theirs = _claimed(owner, models, lease="theirs")
    bad = TestResultFactory.build(execution=ours, model=models[0], score=-1.0)
    fine = TestResultFactory.build(execution=ours, model=models[1])
    foreign = TestResultFactory.build(execution=theirs, model=models[0])

    lost, saved = write_results(lease="ours", results=[bad, fine, foreign], finished=[])

    assert lost == {str(theirs.pk)}
    assert {result.execution_id for result in saved} == {ours.pk} and len(saved) == 2
    assert not TestResult.objects.filter(execution=theirs).exists()
    assert TestResult.objects.filter(execution=ours).count() == 2
    assert_counters_agree(ours)
    theirs.refresh_from_db()
    assert theirs.progress == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite checks foreign keys only at commit")
def test_a_foreign_key_refused_at_commit_fails_only_that_row_on_postgresql(owner) -> None:
    models = LLMModelFactory.create_batch(3)
    # Not execution_start: its job would be dispatched at commit, and this test commits.
    execution = ExecutionFactory(created_by=owner, total_evaluations=3)
    execution.llm_models.set(models)
    assert claim_executions([str(execution.pk)], lease="lease-1") == [str(execution.pk)]
    gone = models[0]
    orphan = TestResultFactory.build(execution=execution, model=gone)
    others = [TestResultFactory.build(execution=execution, model=model) for model in models[1:]]
    # The model disappears while its answer waits to be written (its link to the execution goes with it).
    LLMModel.objects.filter(pk=gone.pk).delete()

    lost, saved = write_results(lease="lease-1", results=[orphan, *others], finished=[])

    assert lost == set()
    assert {result.model_id for result in saved} == {model.pk for model in models[1:]}
    assert TestResult.objects.filter(execution=execution).count() == 2
    assert_counters_agree(execution)


# --- the cleaning itself -------------------------------------------------------------------------------


def test_clean_text_replaces_only_what_postgresql_refuses() -> None:
    assert clean_text("plain ascii") == "plain ascii"
    assert clean_text("ü 🇫🇷 \t\n") == "ü 🇫🇷 \t\n"
    assert clean_text(f"{NUL}a\ud83db\udc00") == f"{REPLACEMENT}a{REPLACEMENT}b{REPLACEMENT}"


def test_clean_json_cleans_keys_and_values_and_spells_non_finite_numbers() -> None:
    document = {f"a{NUL}": [{"b": "\ud800"}, math.nan, -math.inf, 1e308, True, None], "n": 3}
    assert clean_json(document) == {
        f"a{REPLACEMENT}": [{"b": REPLACEMENT}, "NaN", "-Infinity", 1e308, True, None],
        "n": 3,
    }
    assert clean_json((f"t{NUL}", 2.5)) == [f"t{REPLACEMENT}", 2.5]


def test_insert_rows_stores_cleaned_text_for_any_model(owner) -> None:
    (model,) = LLMModelFactory.create_batch(1)
    execution = _claimed(owner, [model])
    row = TestResultFactory.build(execution=execution, model=model, raw_output=f"{NUL}")
    insert_rows(TestResult, [row])
    assert TestResult.objects.get(pk=row.pk).raw_output == REPLACEMENT
