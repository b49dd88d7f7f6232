"""What the engine announces to whoever listens (the leaderboard, in this project).

The engine sits below the analytics (imports run leaderboard → evaluations, never back): it must not
know they exist, so it tells what happened through these signals and `leaderboard/apps.py` connects
to them. Receivers run on
the engine's database thread; a receiver that fails is logged and ignored, because the results it
was told about are already committed and counted (derived data can be rebuilt, a crashed run could not).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.dispatch import Signal

from evaluations.models import Execution, TestResult

logger = logging.getLogger(__name__)

# Sent after results are committed with their counters, in batches (every few seconds during a run
# and once at its end). Arguments: sender=TestResult, results=Sequence[TestResult] (the saved rows,
# without their bulky text: raw_output, parsed_output and evaluation_details are emptied).
results_saved = Signal()

# Sent after a job ends (its executions' final status already saved) when it saved results and no
# other job is waiting, so expensive follow-up work runs once after a batch, not between its jobs.
# Arguments: sender=Execution.
queue_drained = Signal()


def _send_robustly(signal: Signal, *, sender: type[Any], what: str, **kwargs: Any) -> None:
    for receiver, outcome in signal.send_robust(sender=sender, **kwargs):
        if isinstance(outcome, Exception):
            logger.exception(
                "A receiver of %s failed: %s.", what, getattr(receiver, "__qualname__", receiver), exc_info=outcome
            )


def results_saved_send(*, results: Sequence[TestResult]) -> None:
    """Announce saved results (nothing when there are none); never raises what a receiver raised."""
    if results:
        _send_robustly(results_saved, sender=TestResult, what="results_saved", results=results)


def queue_drained_send() -> None:
    """Announce that the last waiting job has ended; never raises what a receiver raised."""
    _send_robustly(queue_drained, sender=Execution, what="queue_drained")
