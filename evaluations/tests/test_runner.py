"""The engine run synchronously on the test's own connection (jobs take ids; the calling thread writes)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.run import run_executions
from evaluations.services import execution_start

pytestmark = pytest.mark.django_db


def assert_counters_agree(execution: Execution) -> None:
    execution.refresh_from_db()
    results = TestResult.objects.filter(execution=execution)
    completed = results.filter(status=TestResult.Status.COMPLETED)
    assert execution.progress == results.count()
    assert execution.successful_evaluations == completed.count()
    assert execution.failed_evaluations == results.exclude(status=TestResult.Status.COMPLETED).count()
    assert execution.scored_count == results.filter(score__isnull=False).count()
    assert execution.score_sum == pytest.approx(sum(r.score for r in results if r.score is not None))
    costs = results.aggregate(c=Sum("cost"), j=Sum("judge_cost"))
    assert execution.total_cost == (costs["c"] or Decimal(0)) + (costs["j"] or Decimal(0))


def test_it_runs_every_model_and_writes_one_scored_result_each(owner, django_capture_on_commit_callbacks):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(5)]
    test_case = TestCaseFactory()
    execution = execution_start(test_case=test_case, models=models, started_by=owner)
    report = run_executions([execution.pk])
    execution.refresh_from_db()
    assert report.results == 5
    assert execution.status == Execution.Status.COMPLETED
    assert execution.total_evaluations == 5
    assert execution.successful_evaluations == 5
    assert execution.avg_score == 1.0
    assert execution.started_at is not None and execution.completed_at is not None
    assert_counters_agree(execution)
    result = TestResult.objects.filter(execution=execution).first()
    assert result.raw_output == "Paris"
    assert result.is_correct is True
    assert result.input_tokens and result.output_tokens
    assert result.cost > 0


# --- against the fake OpenAI-compatible server -----------------------------------------------------
import json  # noqa: E402
import logging  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from evaluations.runner.writes import claim_executions  # noqa: E402
from evaluations.services import execution_cancel  # noqa: E402
from providers.testing.fake_servers import FakeServer  # noqa: E402


@pytest.fixture
def fast_retries(settings):
    settings.EVAL_BACKOFF_BASE_SECONDS = 0.01
    settings.EVAL_BACKOFF_MAX_SECONDS = 0.05
    settings.EVAL_MAX_ATTEMPTS = 4
    settings.EVAL_CACHE = False
    return settings


@pytest.fixture
def server():
    with FakeServer("openai", default_answer="Paris", retry_after=0.01) as fake:
        yield fake


def fake_models(server, n, **fields):
    return [
        LLMModelFactory(
            provider="openai_compatible",
            provider_model_id=f"fake-model-{i}",
            config={"base_url": server.base_url},
            **fields,
        )
        for i in range(n)
    ]


def test_it_retries_rate_limits_and_server_errors_and_counts_attempts(owner, server, fast_retries):
    server.set_script(["rate_limit", "server_error", "rate_limit"])
    (model,) = fake_models(server, 1)
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    report = run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.COMPLETED
    assert result.attempts == 4
    assert report.retries == 3
    assert server.request_count == 4
    assert_counters_agree(execution)


def test_it_does_not_retry_permanent_errors(owner, server, fast_retries):
    server.set_script(["bad_request"])
    (model,) = fake_models(server, 1)
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    execution.refresh_from_db()
    assert result.status == TestResult.Status.FAILED
    assert result.error_type == "permanent"
    assert result.attempts == 1
    assert server.request_count == 1
    assert execution.status == Execution.Status.FAILED
    assert "Every evaluation failed" in execution.error_message


def test_it_gives_up_after_max_attempts_and_records_a_timeout(owner, server, fast_retries):
    fast_retries.EVAL_MAX_ATTEMPTS = 2
    server.set_script(["hang", "hang"])
    (model,) = fake_models(server, 1)
    execution = execution_start(test_case=TestCaseFactory(timeout_seconds=1), models=[model], started_by=owner)
    run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.TIMEOUT
    assert result.error_type == "timeout"
    assert result.attempts == 2
    assert_counters_agree(execution)


def test_an_open_circuit_breaker_fails_the_remaining_calls_with_that_reason(owner, server, fast_retries, settings):
    settings.EVAL_BREAKER_THRESHOLD = 3
    settings.EVAL_BREAKER_COOLDOWN_SECONDS = 60
    settings.EVAL_MAX_ATTEMPTS = 1
    settings.PROVIDER_CONCURRENCY = {**settings.PROVIDER_CONCURRENCY, "openai_compatible": 1}
    server.set_fault_rates({"server_error": 1.0})
    models = fake_models(server, 6)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([execution.pk])
    results = TestResult.objects.filter(execution=execution)
    assert results.filter(error_type="transient").count() == 3
    assert results.filter(error_type="circuit_open").count() == 3
    assert "circuit breaker" in results.filter(error_type="circuit_open").first().error_message
    assert server.request_count == 3
    assert_counters_agree(execution)


def test_a_cached_answer_is_rescored_marked_cached_and_costs_nothing(owner, server, settings):
    settings.EVAL_CACHE = True
    models = fake_models(server, 2)
    test_case = TestCaseFactory()
    first = execution_start(test_case=test_case, models=models, started_by=owner)
    run_executions([first.pk])
    calls = server.request_count
    second = execution_start(test_case=test_case, models=models, started_by=owner)
    report = run_executions([second.pk])
    assert server.request_count == calls
    assert report.cache_hits == 2
    for result in TestResult.objects.filter(execution=second):
        assert result.cached is True
        assert result.cost == 0
        assert result.score == 1.0
    second.refresh_from_db()
    assert second.total_cost == 0
    assert_counters_agree(second)


def test_a_nonzero_temperature_is_never_served_from_the_cache(owner, server, settings):
    settings.EVAL_CACHE = True
    models = fake_models(server, 1, default_temperature=0.7)
    test_case = TestCaseFactory()
    run_executions([execution_start(test_case=test_case, models=models, started_by=owner).pk])
    run_executions([execution_start(test_case=test_case, models=models, started_by=owner).pk])
    assert server.request_count == 2
    assert not TestResult.objects.filter(cached=True).exists()


def test_the_llm_judge_records_its_tokens_and_cost(owner, fast_retries):
    verdict = {"score": 0.9, "pass": True, "reasoning": "Close to the reference."}
    with (
        FakeServer("openai", default_answer="Paris is the capital.") as answers,
        FakeServer("openai", default_answer=json.dumps(verdict)) as judge_server,
    ):
        (model,) = fake_models(answers, 1)
        LLMModelFactory(
            name="judge-model",
            provider="openai_compatible",
            config={"base_url": judge_server.base_url},
            is_active=False,
            supports_structured_output=True,
        )
        test_case = TestCaseFactory(
            evaluation_type="llm_judge", evaluation_config={"judge_model": "judge-model", "rubric": "Be strict."}
        )
        execution = execution_start(test_case=test_case, models=[model], started_by=owner)
        run_executions([execution.pk])
        sent = judge_server.last_request.body
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.COMPLETED
    assert result.score == 0.9
    assert result.is_correct is True
    assert result.evaluation_details["reasoning"] == "Close to the reference."
    assert result.judge_tokens and result.judge_tokens > 0
    assert result.judge_cost > 0
    assert "Be strict." in json.dumps(sent)
    assert "Paris is the capital." in json.dumps(sent)
    assert_counters_agree(execution)


@pytest.mark.parametrize(
    ("judge_answer", "reason"),
    [
        ("I think it is fine.", "unusable verdict"),
        (json.dumps({"score": 7, "pass": True, "reasoning": "?"}), "score must be a number from 0 to 1"),
    ],
)
def test_a_judge_failure_fails_the_result_with_the_reason_never_a_silent_zero(
    owner, fast_retries, judge_answer, reason
):
    with (
        FakeServer("openai", default_answer="Paris") as answers,
        FakeServer("openai", default_answer=judge_answer) as judge_server,
    ):
        (model,) = fake_models(answers, 1)
        LLMModelFactory(name="judge-model", provider="openai_compatible", config={"base_url": judge_server.base_url})
        test_case = TestCaseFactory(evaluation_type="llm_judge", evaluation_config={"judge_model": "judge-model"})
        execution = execution_start(test_case=test_case, models=[model], started_by=owner)
        run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.FAILED
    assert result.error_type == "judge_error"
    assert reason in result.error_message
    assert result.score is None
    assert result.judge_tokens and result.judge_tokens > 0


def test_a_missing_judge_model_fails_the_result_with_the_reason(owner, server, settings):
    settings.JUDGE_MODEL = ""
    (model,) = fake_models(server, 1)
    test_case = TestCaseFactory(evaluation_type="llm_judge", evaluation_config={})
    execution = execution_start(test_case=test_case, models=[model], started_by=owner)
    run_executions([execution.pk])
    result = TestResult.objects.get(execution=execution)
    assert result.status == TestResult.Status.FAILED
    assert "No judge model" in result.error_message


def test_the_judge_defaults_to_settings_judge_model(owner, server, settings):
    verdict = {"score": 1, "pass": True, "reasoning": "ok"}
    with FakeServer("openai", default_answer=json.dumps(verdict)) as judge_server:
        LLMModelFactory(name="default-judge", provider="openai_compatible", config={"base_url": judge_server.base_url})
        settings.JUDGE_MODEL = "default-judge"
        (model,) = fake_models(server, 1)
        test_case = TestCaseFactory(evaluation_type="llm_judge", evaluation_config={})
        execution = execution_start(test_case=test_case, models=[model], started_by=owner)
        run_executions([execution.pk])
        assert judge_server.request_count == 1
    assert TestResult.objects.get(execution=execution).evaluation_details["judge_model"] == "default-judge"


def test_a_duplicate_delivery_claims_nothing_and_writes_nothing_twice(owner, server):
    models = fake_models(server, 3)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([execution.pk])
    again = run_executions([execution.pk])
    assert again.claimed == []
    assert TestResult.objects.filter(execution=execution).count() == 3
    assert server.request_count == 3


def test_a_cancelled_execution_is_never_run(owner, server):
    models = fake_models(server, 3)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    execution_cancel(execution=execution, actor=owner)
    report = run_executions([execution.pk])
    assert report.claimed == []
    assert server.request_count == 0
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_recovery_runs_only_the_missing_pairs_of_a_stale_execution(owner, server, settings):
    settings.BUDGET_OVERRUN_FACTOR = 10_000  # the made-up results below cost far more than the estimate
    models = fake_models(server, 4)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    # A first worker claimed it, saved two results, and died.
    claim_executions([str(execution.pk)], lease="dead-worker")
    from evaluations.runner.planning import plan_executions
    from evaluations.runner.writes import write_results
    from evaluations.tests.factories import TestResultFactory

    done = [
        TestResultFactory.build(execution=execution, model=model, cost=Decimal("0.5"), score=1.0)
        for model in models[:2]
    ]
    write_results(lease="dead-worker", results=done, finished=[])
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    _, pairs = plan_executions([str(execution.pk)])
    assert len(pairs) == 2

    report = run_executions([execution.pk], takeover_stale_after=60)
    assert report.results == 2
    assert server.request_count == 2
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert TestResult.objects.filter(execution=execution).count() == 4
    assert_counters_agree(execution)


def test_a_live_execution_is_not_taken_over(owner, server):
    models = fake_models(server, 2)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    claim_executions([str(execution.pk)], lease="live-worker")
    report = run_executions([execution.pk], takeover_stale_after=60)
    assert report.claimed == []
    assert server.request_count == 0


def test_the_request_id_follows_the_execution_into_the_engine_logs(owner, server, fast_retries, caplog):
    server.set_script(["server_error"])
    (model,) = fake_models(server, 1)
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner, request_id="req-abc")
    with caplog.at_level(logging.INFO, logger="evaluations.runner.engine"):
        run_executions([execution.pk])
    retry_logs = [record for record in caplog.records if "Retrying" in record.getMessage()]
    assert retry_logs
    from openbench.logging import RequestIdFilter

    for record in retry_logs:
        RequestIdFilter().filter(record)
        assert record.request_id == "req-abc"


def test_the_per_provider_rpm_spaces_the_calls(owner, server, settings):
    settings.EVAL_CACHE = False
    settings.PROVIDER_RPM = {**settings.PROVIDER_RPM, "openai_compatible": 600}  # one call every 0.1 s
    models = fake_models(server, 5)
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    import time

    started = time.monotonic()
    run_executions([execution.pk])
    assert time.monotonic() - started >= 0.4
    assert TestResult.objects.filter(execution=execution, status="completed").count() == 5


def test_structured_output_is_asked_only_of_models_that_support_it(owner, server):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    server.default_answer = json.dumps({"city": "Paris"})
    (plain,) = fake_models(server, 1)
    test_case = TestCaseFactory(
        evaluation_type="structured_match", expected_output={"city": "Paris"}, output_schema=schema
    )
    run_executions([execution_start(test_case=test_case, models=[plain], started_by=owner).pk])
    assert "response_format" not in server.last_request.body
    capable = LLMModelFactory(
        provider="openai_compatible", config={"base_url": server.base_url}, supports_structured_output=True
    )
    run_executions([execution_start(test_case=test_case, models=[capable], started_by=owner).pk])
    assert "response_format" in server.last_request.body
    assert set(TestResult.objects.values_list("score", flat=True)) == {1.0}


def test_this_process_forgets_cancel_flags_once_they_are_old(monkeypatch, settings):
    from evaluations.runner import cancellation

    settings.REDIS_URL = ""  # only this process's flags
    clock = [1000.0]
    monkeypatch.setattr(cancellation, "_clock", lambda: clock[0])
    monkeypatch.setattr(cancellation, "_local_flags", {})
    watch = cancellation.CancelWatch()
    cancellation.flag_cancelled("old")
    clock[0] += cancellation.LOCAL_FLAG_SECONDS / 2
    cancellation.flag_cancelled("recent")
    assert watch.is_cancelled("old") and watch.is_cancelled("recent")
    clock[0] += cancellation.LOCAL_FLAG_SECONDS / 2 + 1
    cancellation.flag_cancelled("new")
    assert set(cancellation._local_flags) == {"recent", "new"}
    assert not cancellation.CancelWatch().is_cancelled("old")


def test_a_cancel_flag_redis_cannot_take_is_logged_not_raised(monkeypatch, settings, caplog):
    """The row says `cancelled` before the flag goes out: a flag that cannot be raised must not turn the cancel into
    an error after the fact (running jobs find it in the row within their poll interval)."""
    from evaluations.runner import cancellation

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(cancellation, "_local_flags", {})
    cancellation.flag_cancelled("unreachable")
    assert cancellation.CancelWatch().is_cancelled("unreachable")  # this process's own runs still hear of it
    assert "Could not raise the cancel flag of unreachable" in caplog.text
