"""The engine under real rq workers (subprocesses), real PostgreSQL/Redis and the fake OpenAI-compatible server.

Skipped only when REDIS_URL is unset (CI sets it). Tests use committed transactions so workers see the rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.services import execution_cancel, execution_start, executions_dispatch, executions_start_batch
from evaluations.tests.test_runner import assert_counters_agree
from providers.testing.fake_servers import FakeServer

pytestmark = [
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (real Redis and rq workers)"),
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

BASE_DIR = Path(settings.BASE_DIR)


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker subprocess: this test's database (test_<name>), Redis, fast retries."""
    url = urlsplit(os.environ["DATABASE_URL"])
    test_db = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit((url.scheme, url.netloc, "/" + test_db, url.query, url.fragment)),
        "REDIS_URL": settings.REDIS_URL,
        "EVAL_BACKOFF_BASE_SECONDS": "0.02",
        "EVAL_BACKOFF_MAX_SECONDS": "0.1",
        "EVAL_BREAKER_THRESHOLD": "1000",
        "EVAL_CACHE": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def work_horses(worker: subprocess.Popen[bytes]) -> list[int]:
    """The children rq's forking worker runs its jobs in (none once the worker has exited)."""
    try:
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(pid) for pid in children]


def running(pid: int) -> bool:
    """Whether a process still runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class Workers:
    """rqworker subprocesses started by a test, each in its own process group, all stopped at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *, burst: bool = True, **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"worker-{len(self.processes)}.log").open("wb")
        command = [sys.executable, "manage.py", "rqworker", "evaluations"] + (["--burst"] if burst else [])
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=worker_env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def wait(self, timeout: float = 120) -> None:
        for process in self.processes:
            process.wait(timeout=timeout)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its work horse, as a crash of the machine or container would.

        rq puts each work horse in a process group of its own (setpgrp), so killing the worker's group
        alone would leave the horse running its job."""
        horses = work_horses(process)
        os.killpg(process.pid, signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        process.wait(timeout=10)
        for pid in horses:
            wait_until(lambda pid=pid: not running(pid), timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:] for path in sorted(self.tmp_path.glob("worker-*.log"))
        )


@pytest.fixture
def workers(tmp_path: Path, clean_queue) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def wait_until(predicate, timeout: float = 60, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def fake_models(server: FakeServer, n: int) -> list:
    return [
        LLMModelFactory(provider="openai_compatible", provider_model_id=f"m{i}", config={"base_url": server.base_url})
        for i in range(n)
    ]


def test_with_429s_500s_and_hangs_every_evaluation_ends_once_with_a_final_status(owner, workers):
    rates = {"rate_limit": 0.15, "server_error": 0.1, "hang": 0.04}
    with FakeServer("openai", default_answer="Paris", latency_ms=10, fault_rates=rates, retry_after=0.05) as server:
        models = fake_models(server, 20)
        tests = [TestCaseFactory(timeout_seconds=1) for _ in range(3)]
        executions = executions_start_batch(test_cases=tests, models=models, started_by=owner)
        workers.start(EVAL_MAX_ATTEMPTS="4")
        workers.wait()
        requests = server.request_count
    results = TestResult.objects.filter(execution__in=executions)
    assert results.count() == 60, workers.logs()
    for execution in Execution.objects.filter(pk__in=[e.pk for e in executions]):
        assert execution.is_finished
        assert execution.status in (Execution.Status.COMPLETED, Execution.Status.FAILED)
        assert execution.progress == execution.total_evaluations == 20
        assert_counters_agree(execution)
    assert set(results.values_list("status", flat=True)) <= {"completed", "failed", "timeout"}
    # Every request the server saw is an attempt counted on a result (a few attempts may die on a
    # dropped keep-alive connection before reaching it), and the retries show.
    attempts = sum(results.values_list("attempts", flat=True))
    assert requests <= attempts <= requests + 5
    assert results.filter(attempts__gt=1).count() > 5


def test_a_worker_killed_mid_run_is_recovered_without_losing_or_duplicating_results(owner, workers):
    from django.core.management import call_command

    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, 200)
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        worker = workers.start(burst=False, EVAL_CONCURRENCY="10")

        def some_progress() -> bool:
            execution.refresh_from_db()
            return execution.progress >= 40

        wait_until(some_progress, timeout=90)
        workers.kill(worker)
        execution.refresh_from_db()
        assert execution.status == Execution.Status.RUNNING
        assert 40 <= execution.progress < 200
        assert_counters_agree(execution)

        call_command("recover_executions", stale_after=0)
        workers.start(EVAL_CONCURRENCY="50")
        workers.wait(timeout=120)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED, workers.logs()
    assert TestResult.objects.filter(execution=execution).count() == 200
    assert TestResult.objects.filter(execution=execution).values("model").distinct().count() == 200
    assert_counters_agree(execution)
    assert execution.progress == 200


def test_a_work_horse_killed_mid_run_is_retried_by_its_worker_and_finishes_only_the_missing_pairs(owner, workers):
    """The job's own retry: the worker sees its work horse die, re-enqueues the job (same id, so the same
    lease on the executions) and the retry runs only the pairs that have no result yet."""
    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, 200)
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        worker = workers.start(burst=False, EVAL_CONCURRENCY="10", LOG_LEVEL="INFO")

        def some_progress() -> bool:
            execution.refresh_from_db()
            return execution.progress >= 40

        wait_until(some_progress, timeout=90)
        horses = work_horses(worker)
        assert len(horses) == 1, workers.logs()
        os.kill(horses[0], signal.SIGKILL)
        killed_at = execution.progress

        def finished() -> bool:
            execution.refresh_from_db()
            return execution.is_finished

        wait_until(finished, timeout=120)
        requests = len(server.generation_requests)
    logs = workers.logs()
    assert "Work-horse terminated unexpectedly" in logs, logs
    assert "enqueued for retry" in logs, logs
    assert worker.poll() is None  # the worker itself lived on
    assert execution.status == Execution.Status.COMPLETED, logs
    assert 40 <= killed_at < 200
    results = TestResult.objects.filter(execution=execution)
    assert results.count() == 200
    assert results.values("model").distinct().count() == 200
    assert_counters_agree(execution)
    # Made twice: only the calls in flight when the horse died (at most the concurrency, 10) and the
    # answers it had not written yet (results are flushed every 0.1 s: about 10 more at this pace).
    assert 200 <= requests <= 200 + 3 * 10


def test_cancel_in_the_middle_stops_new_calls_and_keeps_counters_consistent(owner, workers):
    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, 100)
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        workers.start(EVAL_CONCURRENCY="5")

        def some_progress() -> bool:
            execution.refresh_from_db()
            return execution.progress >= 10

        wait_until(some_progress, timeout=90)
        execution_cancel(execution=execution, actor=owner)
        time.sleep(0.05)  # requests already on the wire arrive
        calls_at_cancel = server.request_count
        workers.wait(timeout=60)
        calls_after = server.request_count
    assert calls_after == calls_at_cancel
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED
    assert execution.progress < 100
    assert TestResult.objects.filter(execution=execution).count() == execution.progress <= calls_at_cancel
    assert_counters_agree(execution)


def test_two_workers_on_one_queue_never_write_a_result_twice(owner, workers):
    with FakeServer("openai", default_answer="Paris", latency_ms=20) as server:
        models = fake_models(server, 10)
        executions = [execution_start(test_case=TestCaseFactory(), models=models, started_by=owner) for _ in range(8)]
        # A duplicate delivery of every job, as a redelivery or a double click would make.
        executions_dispatch(execution_ids=[execution.pk for execution in executions])
        workers.start()
        workers.start()
        workers.wait()
        requests = server.request_count
    assert requests == 80
    for execution in Execution.objects.filter(pk__in=[e.pk for e in executions]):
        assert execution.status == Execution.Status.COMPLETED, workers.logs()
        assert TestResult.objects.filter(execution=execution).count() == 10
        assert_counters_agree(execution)
