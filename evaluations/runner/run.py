"""The runner's entry point: claim executions, run an Engine over them on its own event loop, and fail
what is left open if the engine crashes.

`run_executions` is what the rq jobs, the in-process executor and the commands call; it runs on the
calling thread's database connection (all writes happen there) and drives the engine's event loop
on a helper thread (DatabaseBridge).
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from evaluations.runner.bridge import DatabaseBridge
from evaluations.runner.engine import PLAN_FIRST, Engine
from evaluations.runner.planning import plan_executions
from evaluations.runner.tickets import HeldTicket, Intake, RunReport, could_not_start
from evaluations.runner.writes import claim_executions, fail_executions
from evaluations.services import models_health_refresh
from openbench.logging import request_id_context

logger = logging.getLogger("evaluations.runner.engine")  # the engine's logger: one name to filter on


def run_executions(
    execution_ids: Sequence[Any],
    *,
    lease: str = "",
    takeover_stale_after: float | None = None,
    intake: Intake | None = None,
) -> RunReport:
    """Claim the given executions and run every missing (execution, model) pair; safe to call twice.

    With an `intake`, the engine also takes further jobs from it while it runs (each under its own
    lease) and returns once none is left and every pair has settled; the report counts them all.
    Runs on the calling thread's database connection (all writes happen here); the provider calls run
    in an event loop on a helper thread.
    """
    lease = lease or uuid.uuid4().hex
    ids = [str(execution_id) for execution_id in execution_ids]
    claimed = claim_executions(ids, lease=lease, takeover_stale_after=takeover_stale_after)
    if not claimed and intake is None:
        logger.info("Nothing to run: executions already taken or finished.", extra={"executions": len(ids)})
        return RunReport()
    # The first few executions are planned here, the rest by the engine while their calls run: the first
    # call does not wait for the whole job's plan.
    first, rest = claimed[:PLAN_FIRST], claimed[PLAN_FIRST:]
    try:
        plans, pairs = plan_executions(first, lease=lease) if first else ([], [])
    except Exception as exc:
        # Ours, not the exception's text (it may quote anything); the traceback is in the log.
        logger.exception("Could not plan %d executions.", len(first))
        fail_executions(lease=lease, execution_ids=claimed, message=could_not_start(exc))
        raise
    logger.info("Running %d executions (%d evaluations planned to start with).", len(claimed), len(pairs))
    engines: list[Engine] = []

    async def main(bridge: DatabaseBridge) -> RunReport:
        engine = Engine(bridge=bridge, lease=lease, plans=plans, pairs=pairs, intake=intake, unplanned=rest)
        engines.append(engine)
        return await engine.run()

    request_ids = {plan.request_id for plan in plans}
    # Two busy threads (event loop, database writes): a short GIL switch interval keeps the loop from
    # waiting up to 5 ms for the GIL after every socket call while the other thread builds SQL.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.001))
    try:
        with request_id_context(request_ids.pop() if len(request_ids) == 1 and intake is None else ""):
            report = DatabaseBridge().serve(main)
    except BaseException as exc:
        logger.exception("The evaluation engine crashed.")
        _fail_held(engines[0].held.values() if engines else [], own=lease, claimed=claimed, exc=exc)
        raise
    finally:
        sys.setswitchinterval(switch_interval)
    engine = engines[0]
    if engine.evaluator.models_called:
        _refresh_health(engine.evaluator.models_called)
    logger.info(
        "Finished %d results (%d calls, %d retries, %d cached, %d jobs taken in).",
        report.results,
        report.calls,
        report.retries,
        report.cache_hits,
        report.overlapped,
    )
    return report


def _fail_held(held: Iterable[HeldTicket], *, own: str, claimed: Sequence[str], exc: BaseException) -> None:
    """After a crash: fail every execution still open under its own lease, and end the jobs taken in.

    The stored reason names the exception's class only (its text may quote anything); the caller has
    logged the traceback."""
    message = f"Internal error ({type(exc).__name__}); see the worker log."
    fail_executions(lease=own, execution_ids=claimed, message=message)
    for one in held:
        if one.ticket.lease == own:
            continue
        fail_executions(lease=one.ticket.lease, execution_ids=list(one.open), message=message)
        if one.ticket.on_done is not None:
            try:
                one.ticket.on_done(one.report, message)
            except Exception:
                logger.exception("Could not record the end of job %s.", one.ticket.lease)


def _refresh_health(model_ids: set[Any]) -> None:
    """The models' health from their latest calls, now that this run's are saved (never fails the run)."""
    try:
        models_health_refresh(model_ids=list(model_ids))
    except Exception:
        logger.exception("Deriving the health of %d models failed.", len(model_ids))
