"""`manage.py run_batch --wait`: the progress bar, the summary and the exit code, in both deployments.

With REDIS_URL (CI's first pass) the executions run in a real rq worker subprocess against this test's
PostgreSQL database while the command polls and draws its bar; without it they run in the in-process
executor, which the command waits for before drawing the bar.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.tests.test_queue import Workers, fake_models
from providers.testing.fake_servers import FakeServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def background(tmp_path: Path, clean_queue: None) -> Iterator[Workers | None]:
    """Under rq, real worker subprocesses (stopped at the end); None for the in-process executor."""
    if not settings.USE_RQ:
        yield None
        # The command returns once the rows are finished; the executor's thread may still be logging.
        from evaluations import executor

        executor.wait_idle()
        return
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def run_batch(capsys: pytest.CaptureFixture[str], poll: float = 0.05, **options: object) -> tuple[int, str, str]:
    """Run the command as a user would; its exit code, stdout, and stderr with tqdm's bar in it."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("run_batch", wait=True, poll=poll, stdout=out, stderr=err, **options)
    except SystemExit as exc:
        code = int(exc.code or 0)
    # tqdm writes to sys.stderr itself, not to the command's stderr.
    return code, out.getvalue(), err.getvalue() + capsys.readouterr().err


def bar_counts(stderr: str, total: int) -> list[int]:
    """Every `done/total` the progress bar drew, in order."""
    return [int(done) for done in re.findall(rf"(\d+)/{total} \[", stderr)]


def test_run_batch_wait_draws_progress_until_every_evaluation_is_done_and_prints_a_summary(
    owner, background, capsys
) -> None:
    with FakeServer("openai", default_answer="Paris", latency_ms=40) as server:
        models = fake_models(server, 10)
        tests = [TestCaseFactory(title=f"Capital {i}", expected_output="Paris") for i in range(3)]
        if background is not None:
            # Two calls at a time at 40 ms each: the run lasts long enough for the bar to move in steps.
            background.start(burst=False, EVAL_CONCURRENCY="2")
        code, out, err = run_batch(capsys, models=[model.name for model in models])

    assert code == 0, (out, err, background.logs() if background else "")
    assert "Started 3 executions (30 evaluations)" in out
    counts = bar_counts(err, 30)
    assert counts and counts[-1] == 30, err
    assert counts == sorted(counts)  # a bar that only moves forward
    assert "100%" in err and "eval" in err
    if background is not None:
        # The bar followed the worker's progress instead of jumping to the end once.
        assert any(0 < count < 30 for count in counts), err
    # The summary: one line per test, every one completed 10/10 with a perfect score.
    for test in tests:
        line = next(line for line in out.splitlines() if line.startswith(test.title))
        assert re.search(r"completed\s+10/10\s+10\s+0\s+1\.000", line), line
    assert Execution.objects.filter(status=Execution.Status.COMPLETED).count() == 3
    assert TestResult.objects.filter(status=TestResult.Status.COMPLETED).count() == 30


def test_run_batch_wait_exits_non_zero_and_says_how_many_executions_failed(owner, background, capsys, settings) -> None:
    broken = LLMModelFactory(config={"error_rate": 1.0, "latency_ms": 0})
    TestCaseFactory(title="Doomed")
    settings.EVAL_MAX_ATTEMPTS = 1  # the in-process executor reads it here; a worker from its environment
    if background is not None:
        background.start(burst=False, EVAL_MAX_ATTEMPTS="1")
    code, out, err = run_batch(capsys, models=[broken.name])

    assert code == 1, (out, err, background.logs() if background else "")
    assert "1 execution(s) failed." in err
    assert bar_counts(err, 1)[-1] == 1
    assert re.search(r"^Doomed\s+failed\s+1/1\s+0\s+1\s", out, re.MULTILINE), out
    assert Execution.objects.get().status == Execution.Status.FAILED


def test_run_batch_wait_learns_of_its_own_finishes_at_once_not_at_the_next_poll(owner, background, capsys) -> None:
    # With a 60 s poll, only the announcement of its own executions' finish can end the wait in time: under rq
    # the worker's message (the ids as the engine writes them) must match the ids the command holds.
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    TestCaseFactory.create_batch(2)
    if background is not None:
        background.start(burst=False)

    started = time.monotonic()
    code, out, err = run_batch(capsys, poll=60, models=[model.name])

    assert code == 0, (out, err, background.logs() if background else "")
    assert time.monotonic() - started < 30
    assert Execution.objects.filter(status=Execution.Status.COMPLETED).count() == 2
