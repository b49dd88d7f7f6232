"""The engine with repeats (SPEC §12): one call per (execution, model, sample), per-sample response cache keys,
and recovery that runs only the samples a crashed run did not write."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.planning import plan_executions, response_key
from evaluations.runner.run import run_executions
from evaluations.runner.writes import claim_executions, write_results
from evaluations.services import execution_start
from evaluations.tests.factories import TestResultFactory
from evaluations.tests.test_runner import assert_counters_agree
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db


class CountingAnswers:
    """A different answer on every call of each model: 'Paris' on its 1st, 3rd, … call, 'Lyon #n' otherwise."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, model: str, prompt: str) -> str:
        with self.lock:
            self.calls[model] += 1
            n = self.calls[model]
        return "Paris" if n % 2 else f"Lyon #{n}"


@pytest.fixture
def answers() -> CountingAnswers:
    return CountingAnswers()


@pytest.fixture
def server(answers: CountingAnswers) -> Iterator[FakeServer]:
    with FakeServer("openai", answer_fn=answers) as fake:
        yield fake


@pytest.fixture
def cache_on(settings):  # type: ignore[no-untyped-def]
    settings.EVAL_CACHE = True
    return settings


def _fake_models(server: FakeServer, n: int) -> list[LLMModel]:
    return [
        LLMModelFactory(
            provider="openai_compatible",
            provider_model_id=f"fake-model-{i}",
            config={"base_url": server.base_url},
            default_temperature=0.0,
        )
        for i in range(n)
    ]


def _outputs(execution: Execution) -> dict[tuple[str, int], str]:
    return {
        (str(model_id), sample): raw
        for model_id, sample, raw in TestResult.objects.filter(execution=execution).values_list(
            "model_id", "sample", "raw_output"
        )
    }


def test_three_repeats_call_each_model_three_times_and_store_samples_0_1_2(
    owner: User, server: FakeServer, cache_on: object
) -> None:
    models = _fake_models(server, 2)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=3)
    report = run_executions([execution.pk])
    assert server.request_count == 6
    assert report.results == 6 and report.cache_hits == 0
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert (execution.progress, execution.total_evaluations) == (6, 6)
    assert_counters_agree(execution)
    results = TestResult.objects.filter(execution=execution)
    for model in models:
        mine = results.filter(model=model)
        assert sorted(mine.values_list("sample", flat=True)) == [0, 1, 2]
        assert not mine.filter(cached=True).exists()
        # Each call's own answer: the samples disagree, as the model did.
        assert sorted(mine.values_list("raw_output", flat=True)) == ["Lyon #2", "Paris", "Paris"]
        assert len(set(mine.values_list("response_key", flat=True))) == 3
    assert execution.successful_evaluations == 6
    assert execution.score_sum == pytest.approx(4.0)


def test_the_response_cache_gives_each_sample_its_own_answer(owner: User, server: FakeServer, cache_on: object) -> None:
    models = _fake_models(server, 1)
    test_case = TestCaseFactory()
    first = execution_start(test_case=test_case, models=models, started_by=owner, repeats=3)
    run_executions([first.pk])
    second = execution_start(test_case=test_case, models=models, started_by=owner, repeats=3)
    report = run_executions([second.pk])
    assert server.request_count == 3
    assert report.cache_hits == 3
    assert set(TestResult.objects.filter(execution=second).values_list("cached", flat=True)) == {True}
    # Sample i of the second run is sample i of the first: never one answer handed to every sample.
    assert _outputs(second) == _outputs(first)
    assert len(set(_outputs(second).values())) == 2
    assert_counters_agree(second)


def test_a_single_run_keeps_its_cache_key_and_seeds_sample_0_of_a_repeated_run(
    owner: User, server: FakeServer, cache_on: object
) -> None:
    models = _fake_models(server, 1)
    test_case = TestCaseFactory()
    single = execution_start(test_case=test_case, models=models, started_by=owner)
    run_executions([single.pk])
    _, pairs = plan_executions([str(single.pk)])
    assert pairs == []  # nothing left to run
    repeated = execution_start(test_case=test_case, models=models, started_by=owner, repeats=3)
    _, pairs = plan_executions([str(repeated.pk)])
    keys = [pair.response_key for pair in pairs]
    assert keys[0] == response_key(models[0], pairs[0].request)
    assert keys[0] == TestResult.objects.get(execution=single).response_key
    assert len(set(keys)) == 3
    report = run_executions([repeated.pk])
    assert report.cache_hits == 1
    assert server.request_count == 1 + 2
    cached = TestResult.objects.get(execution=repeated, cached=True)
    assert cached.sample == 0


def test_recovery_runs_only_the_samples_a_crashed_run_did_not_write(owner: User, server: FakeServer, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BUDGET_OVERRUN_FACTOR = 10_000  # the made-up results below cost far more than the estimate
    models = _fake_models(server, 2)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=3)
    claim_executions([str(execution.pk)], lease="dead-worker")
    done = [
        TestResultFactory.build(execution=execution, model=model, sample=sample, cost=Decimal("0.5"), score=1.0)
        for model, sample in [(models[0], 0), (models[1], 0), (models[1], 2)]
    ]
    write_results(lease="dead-worker", results=done, finished=[])
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    plans, pairs = plan_executions([str(execution.pk)])
    assert sorted((str(pair.model.pk), pair.sample) for pair in pairs) == sorted(
        [(str(models[0].pk), 1), (str(models[0].pk), 2), (str(models[1].pk), 1)]
    )
    assert plans[0].remaining == 3

    report = run_executions([execution.pk], takeover_stale_after=60)
    assert report.results == 3
    assert server.request_count == 3
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert sorted(TestResult.objects.filter(execution=execution).values_list("sample", flat=True)) == [0, 0, 1, 1, 2, 2]
    assert_counters_agree(execution)


def test_a_duplicate_delivery_of_a_repeated_run_writes_nothing_twice(owner: User, server: FakeServer) -> None:
    models = _fake_models(server, 2)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=2)
    run_executions([execution.pk])
    again = run_executions([execution.pk])
    assert again.claimed == []
    assert TestResult.objects.filter(execution=execution).count() == 4
    assert server.request_count == 4


def test_a_refused_batch_written_row_by_row_keeps_a_new_sample_and_skips_an_existing_one(owner: User) -> None:
    model = LLMModelFactory()
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner, repeats=2)
    claim_executions([str(execution.pk)], lease="worker")
    write_results(lease="worker", results=[TestResultFactory.build(execution=execution, model=model)], finished=[])
    # A duplicate of sample 0 (a retried write) next to sample 1: the batch is refused, then row by row.
    batch = [
        TestResultFactory.build(execution=execution, model=model, sample=0),
        TestResultFactory.build(execution=execution, model=model, sample=1, score=0.0, is_correct=False),
    ]
    lost, saved = write_results(lease="worker", results=batch, finished=[str(execution.pk)])
    assert lost == set()
    assert [result.sample for result in saved] == [1]
    assert sorted(TestResult.objects.filter(execution=execution).values_list("sample", flat=True)) == [0, 1]
    assert_counters_agree(execution)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
