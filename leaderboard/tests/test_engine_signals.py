"""The analytics follow the engine through its signals (connected in LeaderboardConfig.ready())."""

from __future__ import annotations

import pytest

from catalog.tests.factories import LLMModelFactory
from evaluations.models import Execution
from evaluations.services import execution_start
from evaluations.tests.conftest import clean_queue, drain_background_work  # noqa: F401  (fixture)
from leaderboard.models import LatestResult
from leaderboard.tests.conftest import new_test


@pytest.mark.django_db(transaction=True)
def test_a_run_lands_in_the_leaderboard_which_is_warmed_once_after_the_last_job(clean_queue, monkeypatch):  # noqa: F811
    import leaderboard.selectors

    warmed: list[int] = []
    monkeypatch.setattr(leaderboard.selectors, "warm_leaderboards", lambda: warmed.append(1))
    # Slow enough that the later runs are started while the first still runs.
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 600}) for _ in range(2)]
    tests = [new_test() for _ in range(2)]
    for test_case in tests:
        execution_start(test_case=test_case, models=models, started_by=test_case.created_by)
    drain_background_work()

    assert Execution.objects.filter(status=Execution.Status.COMPLETED).count() == 2
    assert LatestResult.objects.filter(counted=True, score=1.0).count() == 4  # 2 tests x 2 models
    assert warmed == [1]


@pytest.mark.django_db
def test_a_leaderboard_failure_after_a_run_is_logged_not_raised(monkeypatch, caplog):
    import leaderboard.selectors
    from evaluations.signals import queue_drained_send

    def broken() -> None:
        raise RuntimeError("cache down")

    monkeypatch.setattr(leaderboard.selectors, "warm_leaderboards", broken)
    queue_drained_send()
    (record,) = [r for r in caplog.records if r.name == "evaluations.signals"]
    assert record.exc_info is not None and str(record.exc_info[1]) == "cache down"
    assert "queue_drained" in record.getMessage()
