"""Keep the analytics read models in step with the catalog and the engine (derived-data maintenance, no
control flow). Connected in `LeaderboardConfig.ready()`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from catalog.models import LLMModel, TestCase
from evaluations.models import Execution, TestResult
from leaderboard.caching import analytics_cache_invalidate

# leaderboard.services (rollups, numpy) is imported by the receivers when they run: this module is
# imported by every process at start-up (LeaderboardConfig.ready), most of which never save a result.


def test_case_saved(sender: type[TestCase], instance: TestCase, created: bool, **kwargs: Any) -> None:
    """Approve/archive/privacy/revision/category changes decide whether a test's results count."""
    if not created and not kwargs.get("raw"):
        from leaderboard.services import test_case_analytics_sync

        test_case_analytics_sync(test_case=instance)


def llm_model_saved(sender: type[LLMModel], instance: LLMModel, **kwargs: Any) -> None:
    """Names and providers are part of every cached answer."""
    transaction.on_commit(lambda: analytics_cache_invalidate(model_ids=[instance.pk]))


def results_saved(sender: type[TestResult], results: Sequence[TestResult], **kwargs: Any) -> None:
    """The engine saved results: the latest results and rollups take them in, the cached answers go stale."""
    from leaderboard.services import results_recorded

    results_recorded(results=results)


def queue_drained(sender: type[Execution], **kwargs: Any) -> None:
    """The engine ran its last waiting job: compute the most-read leaderboards before a visitor asks."""
    from leaderboard.selectors import warm_leaderboards

    warm_leaderboards()


def test_result_deleted(sender: type[TestResult], instance: TestResult, **kwargs: Any) -> None:
    """Deleted results are forgotten together when their transaction commits: deleting an execution
    cascades to all its results inside one transaction, so one pass serves all of them."""
    connection = transaction.get_connection()
    pending: _PendingForgets | None = getattr(_local, "pending", None)
    if pending is None or not pending.is_registered_on(connection):
        # Nothing pending in this transaction (or an earlier transaction committed or rolled back).
        pending = _local.pending = _PendingForgets()
        transaction.on_commit(pending.callback)
    pending.result_ids.add(instance.pk)
    pending.execution_ids.add(instance.execution_id)


class _PendingForgets:
    def __init__(self) -> None:
        self.result_ids: set[Any] = set()
        self.execution_ids: set[Any] = set()  # a repeated execution's row sums up all its samples
        self.callback = self.flush  # one bound method, so the connection's list can be searched for it

    def is_registered_on(self, connection: Any) -> bool:
        return any(entry[1] is self.callback for entry in connection.run_on_commit)

    def flush(self) -> None:
        from leaderboard.services import latest_results_forget

        latest_results_forget(result_ids=self.result_ids, execution_ids=self.execution_ids)


_local = threading.local()  # connections are per thread, and so are their pending deletions
