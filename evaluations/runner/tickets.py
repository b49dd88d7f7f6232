"""The jobs one engine holds, each under its own lease, and what the database thread does for them.

A job reaches the engine as a `Ticket` (the one that started it, or one taken in from an `Intake`
while it runs); the engine keeps it as a `HeldTicket` until every execution of it is closed. The
functions below run on the database thread (DatabaseBridge.run): they claim and plan tickets, write
results, poll and end tickets, each under the lease of the job the executions belong to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from evaluations.models import TestResult
from evaluations.runner import notify
from evaluations.runner.budget_watch import BudgetWatch
from evaluations.runner.planning import Pair, Plan, plan_executions
from evaluations.runner.writes import (
    budgets_after_write,
    claim_executions,
    fail_executions,
    poll_executions,
    write_results,
)

logger = logging.getLogger("evaluations.runner.engine")  # the engine's logger: one name to filter on


@dataclass
class RunReport:
    """What one run of a job did, for logs and the command line."""

    claimed: list[str] = field(default_factory=list)
    results: int = 0
    calls: int = 0
    retries: int = 0
    cache_hits: int = 0
    lost: set[str] = field(default_factory=set)
    overlapped: int = 0  # further jobs this run took in while it ran (see Intake)
    own_results: int = 0  # of `results`, those of the executions the run was started with
    own_claimed: int = 0  # of `claimed`, those the run was started with


@dataclass
class Ticket:
    """One job's executions, handed to a running engine by an Intake.

    `lease` is the job's own id, exactly as if the job ran alone: its executions are claimed, written,
    heartbeaten and recovered under it. `on_done` runs on the database thread once every execution of
    the ticket is closed (its final status saved), with the ticket's report and, when the ticket could
    not run, the reason; it tells the queue the job is over.
    """

    execution_ids: list[str]
    lease: str
    takeover_stale_after: float | None = None
    on_done: Callable[[RunReport, str | None], None] | None = None
    # The W3C trace context the job carries (openbench.tracing); None: the engine's own (the job that started it).
    trace: dict[str, str] | None = None


class Intake(Protocol):
    """Where a running engine takes further jobs from while it runs (the rq queue, the executor's queue).

    `take` waits up to `wait` seconds for a job and takes it atomically (no other engine gets it), or
    returns None; it is called only while the engine has room (see Engine.has_room). `heartbeat` runs
    on the database thread on the engine's heartbeat, for the jobs taken and still running. `pull_for`:
    seconds after the engine's start when it stops taking jobs (a job must end before its timeout).
    """

    pull_for: float

    async def take(self, *, wait: float) -> Ticket | None: ...

    def heartbeat(self) -> None: ...


@dataclass
class HeldTicket:
    """A ticket the engine runs: the executions not yet closed, and what it did."""

    ticket: Ticket
    open: set[str]
    report: RunReport


def write_by_lease(
    batches: dict[str, tuple[list[TestResult], set[str]]], *, watch: BudgetWatch | None = None, final: bool = False
) -> tuple[set[str], list[TestResult]]:
    """write_results for each job's lease (a transaction each); then say which executions are closed, and
    hand the finished ones to the engine's budget watch (`final`: the engine's last write)."""
    lost: set[str] = set()
    saved: list[TestResult] = []
    closed: list[str] = []
    all_finished: list[str] = []
    for lease, (results, finished) in batches.items():
        lost_here, saved_here = write_results(lease=lease, results=results, finished=finished, budgets=False)
        lost |= lost_here
        saved += saved_here
        all_finished += finished
        closed += [execution_id for execution_id in finished if execution_id not in lost_here]
    # Announced as soon as committed: whoever waits for them (run_batch --wait) need not wait for the
    # budget checks below, which concern the executions still running.
    notify.executions_finished(closed)
    lost |= budgets_after_write(saved=saved, finished=all_finished, watch=watch)
    if watch is not None:
        watch.after_close(finished=all_finished + list(lost), final=final)
    return lost, saved


def claim_and_plan(
    tickets: Sequence[Ticket], *, running: set[str]
) -> list[tuple[Ticket, list[str], list[Plan], list[Pair], str | None]]:
    """Claim each ticket's executions under its lease and plan them all at once (on the database thread).

    Returns, per ticket: the executions claimed, their plans and pairs, and why it could not start."""
    claimed = {ticket.lease: _claim_quickly(ticket, running) for ticket in tickets}
    everything = [execution_id for ids in claimed.values() for execution_id in ids]
    by_ticket: dict[str, tuple[list[Plan], list[Pair]]] = {ticket.lease: ([], []) for ticket in tickets}
    failed: dict[str, str] = {}
    try:
        plans, pairs = plan_executions(everything) if everything else ([], [])
    except Exception:  # plan each ticket alone, so one that cannot start fails alone
        plans, pairs = [], []
        for ticket in tickets:
            try:
                found, found_pairs = plan_executions(claimed[ticket.lease]) if claimed[ticket.lease] else ([], [])
            except Exception as exc:
                logger.exception("Could not plan %d executions.", len(claimed[ticket.lease]))
                # Ours, not the exception's text (it may quote anything); the traceback is in the log.
                failed[ticket.lease] = could_not_start(exc)
                fail_executions(lease=ticket.lease, execution_ids=claimed[ticket.lease], message=failed[ticket.lease])
                continue
            plans += found
            pairs += found_pairs
    lease_of = {execution_id: lease for lease, ids in claimed.items() for execution_id in ids}
    for plan in plans:
        plan.lease = lease_of[plan.id]
        by_ticket[plan.lease][0].append(plan)
    for pair in pairs:
        by_ticket[pair.plan.lease][1].append(pair)
    return [(t, claimed[t.lease], *by_ticket[t.lease], failed.get(t.lease)) for t in tickets]


def plan_slice(execution_ids: Sequence[str], *, lease: str) -> tuple[list[Plan], list[Pair], list[str]]:
    """Plan executions already claimed under `lease` (on the database thread), with the executions that could
    not be planned: when the slice cannot be planned, each one is planned alone, and those that still cannot
    are failed with our reason (the traceback is in the log)."""
    try:
        plans, pairs = plan_executions(execution_ids, lease=lease)
        return plans, pairs, []
    except Exception:
        plans, pairs, failed = [], [], []
    for execution_id in execution_ids:
        try:
            found, found_pairs = plan_executions([execution_id], lease=lease)
        except Exception as exc:
            logger.exception("Could not plan execution %s.", execution_id)
            fail_executions(lease=lease, execution_ids=[execution_id], message=could_not_start(exc))
            failed.append(execution_id)
            continue
        plans += found
        pairs += found_pairs
    return plans, pairs, failed


def could_not_start(exc: BaseException) -> str:
    """The stored reason of executions that could not be planned: the exception's class, never its text."""
    return f"Could not start ({type(exc).__name__}); see the worker log."


def _claim_quickly(ticket: Ticket, running: set[str]) -> list[str]:
    """claim_executions for one ticket, leaving out what this engine already runs under another lease."""
    wanted = [execution_id for execution_id in ticket.execution_ids if execution_id not in running]
    if not wanted:
        return []
    return claim_executions(wanted, lease=ticket.lease, takeover_stale_after=ticket.takeover_stale_after)


def poll_by_lease(active: dict[str, list[str]], *, heartbeat: bool) -> set[str]:
    """poll_executions for each job's lease: the executions no longer ours (cancelled, taken over)."""
    gone: set[str] = set()
    for lease, execution_ids in active.items():
        gone |= poll_executions(lease=lease, execution_ids=execution_ids, heartbeat=heartbeat)
    return gone


def end_tickets(ended: Sequence[HeldTicket]) -> None:
    """Tell each job's queue that the job is over (on the database thread, after its executions closed)."""
    for held in ended:
        if held.ticket.on_done is None:
            continue
        try:
            held.ticket.on_done(held.report, None)
        except Exception:  # the executions are closed; a queue that cannot be told must not stop the others
            logger.exception("Could not record the end of job %s.", held.ticket.lease)
