"""Keep the analytics read models in step with the catalog (derived-data maintenance, no control flow)."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction

from catalog.models import LLMModel, TestCase
from evaluations.models import TestResult
from leaderboard import services


def test_case_saved(sender: type[TestCase], instance: TestCase, created: bool, **kwargs: Any) -> None:
    """Approve/archive/privacy/revision/category changes decide whether a test's results count."""
    if not created and not kwargs.get("raw"):
        services.test_case_analytics_sync(test_case=instance)


def llm_model_saved(sender: type[LLMModel], instance: LLMModel, **kwargs: Any) -> None:
    """Names and providers are part of every cached answer."""
    transaction.on_commit(lambda: services.analytics_cache_invalidate(model_ids=[instance.pk]))


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


class _PendingForgets:
    def __init__(self) -> None:
        self.result_ids: set[Any] = set()
        self.callback = self.flush  # one bound method, so the connection's list can be searched for it

    def is_registered_on(self, connection: Any) -> bool:
        return any(entry[1] is self.callback for entry in connection.run_on_commit)

    def flush(self) -> None:
        services.latest_results_forget(result_ids=self.result_ids)


_local = threading.local()  # connections are per thread, and so are their pending deletions
