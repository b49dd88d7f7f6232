"""The evaluation engine: one asyncio loop runs every pair of the executions a job holds.

One job may hold many executions (a batch), so one worker overlaps the provider calls of all of
them; each execution still has its own row, counters, status and cancel. Limits: a global and a
per-provider concurrency, a per-provider requests-per-minute shared through Redis, the test's timeout
per call, bounded retries with backoff and full jitter, and a circuit breaker per provider.

Around it: `run.run_executions` starts an engine and fails what a crash leaves open; `tickets` holds
the jobs an engine runs and what the database thread does for them; `pair_evaluation` turns one pair
into a result; `calls` makes the provider calls within the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from evaluations.models import TestResult
from evaluations.runner.bridge import DatabaseBridge
from evaluations.runner.budget_watch import BudgetWatch
from evaluations.runner.calls import EngineSettings, InternalProviderError, ProviderCaller
from evaluations.runner.cancellation import CancelWatch
from evaluations.runner.pair_evaluation import PairEvaluator
from evaluations.runner.planning import Pair, Plan
from evaluations.runner.tickets import (
    HeldTicket,
    Intake,
    RunReport,
    Ticket,
    claim_and_plan,
    end_tickets,
    plan_slice,
    poll_by_lease,
    write_by_lease,
)
from evaluations.signals import results_saved_send
from openbench.logging import request_id_context
from openbench.tracing import continued

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1  # seconds between result flushes when results trickle in
FLUSH_MAX = 500  # flush at once when this many results wait
POLL_INTERVAL = 0.5  # seconds between checks for cancels and lost leases (the cancel flag is checked per call)
# Saved results are announced (`results_saved`) in batches, because receivers run on the thread that
# shares the GIL with the event loop (the leaderboard's update costs ~110 ms a call plus ~0.25 ms a
# result): every 5 s (a listener is at most that far behind a running job; 2 s cost 4-5 points of
# efficiency) and at the end of a job.
ANALYTICS_INTERVAL = 5.0
# While busy, how long the engine waits at most for another job to take in (or for room to take one).
TAKE_WAIT = 0.05
TAKE_BATCH = 50  # jobs claimed and planned together at most
# Executions the engine starts with are planned in slices: the first PLAN_FIRST before the loop starts (see
# run.run_executions), then each slice PLAN_GROWTH times the last, on the database thread while the first
# calls run. Planning a 500-execution job took 70-130 ms before its first call could start.
PLAN_FIRST = 8
PLAN_GROWTH = 4


class Engine:
    """Runs the planned pairs of the executions of one or more jobs, inside one event loop.

    Executions can be admitted while it runs (`admit`): their pairs join the providers' queues behind
    those already waiting, so the calls of every job the engine holds overlap, while each execution
    keeps its own lease, counters, status and cancel. The run ends when the intake has nothing more to
    give and every admitted pair has settled.
    """

    def __init__(
        self,
        *,
        bridge: DatabaseBridge,
        lease: str = "",
        plans: Sequence[Plan] = (),
        pairs: Sequence[Pair] = (),
        intake: Intake | None = None,
        max_executions: int | None = None,
        unplanned: Sequence[str] = (),
    ) -> None:
        self.bridge = bridge
        self.intake = intake
        self.config = EngineSettings.from_settings()
        self.max_executions = max(1, max_executions or settings.EVAL_WORKER_MAX_EXECUTIONS)
        self.plans: dict[str, Plan] = {}  # executions still open (pairs to run, or results to close them)
        self.report = RunReport()
        self.held: dict[str, HeldTicket] = {}  # by lease
        self.stopped: set[str] = set()  # executions no longer ours to run (cancelled, lease lost)
        self.inflight: dict[str, set[asyncio.Task[Any]]] = defaultdict(set)
        self.queues: dict[str, deque[Pair]] = defaultdict(deque)  # pairs waiting, by provider
        self.alive: dict[str, int] = defaultdict(int)  # worker tasks, by provider
        self.tasks: set[asyncio.Task[None]] = set()
        self.outstanding = 0  # pairs admitted and not settled
        self.admitted_pairs = self.admitted_executions = 0  # for the size of a job yet to be planned
        self.buffer: list[TestResult] = []  # results waiting to be saved
        self.finished: set[str] = set()  # executions waiting to be closed
        self.for_analytics: list[TestResult] = []  # saved, waiting to be announced
        self.analytics_at = time.monotonic()
        self.budgets = BudgetWatch()
        self.cancels = CancelWatch(self.config.redis_url, on_cancel=self._stop)
        self.caller = ProviderCaller(
            limits=self.config, is_stopped=self.stopped.__contains__, is_cancelled=self.cancels.is_cancelled
        )
        self.evaluator = PairEvaluator(
            caller=self.caller, is_cancelled=self.cancels.is_cancelled, on_cache_hit=self._count_cache_hit
        )
        self.flush_now = asyncio.Event()
        self.changed = asyncio.Event()  # a pair settled or an execution closed: room may have freed up
        self.running = False
        # Executions claimed under `lease` and not planned yet: planned while the first calls run (_plan_rest).
        self.unplanned = list(unplanned)
        self.planning = bool(self.unplanned)
        if plans or lease or unplanned:
            ticket = Ticket(execution_ids=[plan.id for plan in plans] + self.unplanned, lease=lease)
            self._hold(ticket, plans, pairs, unplanned=self.unplanned)
        self.own = self.held.get(lease)  # the job that started the engine

    # -- admitting work --------------------------------------------------------------------------
    def has_room(self) -> bool:
        """Whether to take another job: fewer executions than the limit, and not even one call's worth of
        pairs waiting per slot. A worker takes what it can start soon and leaves the rest of a burst
        on the queue for other workers (fairness)."""
        if self.planning:  # the job that started the engine comes first, all of it
            return False
        waiting = sum(len(queue) for queue in self.queues.values())
        return len(self.plans) < self.max_executions and waiting < self.config.concurrency

    def _hold(
        self, ticket: Ticket, plans: Sequence[Plan], pairs: Sequence[Pair], *, unplanned: Sequence[str] = ()
    ) -> HeldTicket:
        claimed = [plan.id for plan in plans] + list(unplanned)
        held = HeldTicket(ticket=ticket, open=set(claimed), report=RunReport(claimed=claimed))
        self.held[ticket.lease] = held
        self.report.claimed += held.report.claimed
        self._add(ticket.lease, plans, pairs)
        return held

    def _add(self, lease: str, plans: Sequence[Plan], pairs: Sequence[Pair]) -> None:
        """Queue the pairs of planned executions held under `lease` (their ticket is held already)."""
        for plan in plans:
            plan.lease = lease
            self.plans[plan.id] = plan
            if plan.remaining == 0:
                self.finished.add(plan.id)
                self.flush_now.set()
        for pair in pairs:
            self.queues[pair.model.provider].append(pair)
        self.outstanding += len(pairs)
        self.admitted_pairs += len(pairs)
        self.admitted_executions += len(plans)
        if self.running:
            for provider in {pair.model.provider for pair in pairs}:
                self._spawn(provider)

    async def _plan_rest(self) -> None:
        """Plan the executions the engine was started with beyond the first slice, slice by slice, and queue
        their pairs behind those already waiting. One that cannot be planned fails alone, with our reason."""
        held = self.own
        size = PLAN_FIRST
        try:
            while self.unplanned and held is not None:
                size *= PLAN_GROWTH
                chunk, self.unplanned = self.unplanned[:size], self.unplanned[size:]
                plans, pairs, failed = await self.bridge.run(plan_slice, chunk, lease=held.ticket.lease)
                held.open.difference_update(failed)
                await self.cancels.check([plan.id for plan in plans])
                self._add(held.ticket.lease, plans, pairs)
                for plan in plans:
                    if self.cancels.is_cancelled(plan.id):
                        self._stop(plan.id)
        finally:
            self.planning = False
            self.changed.set()

    async def admit(self, tickets: Sequence[Ticket]) -> None:
        """Claim jobs' executions and run them alongside those already running (from the loop).

        Jobs taken together are claimed and planned together, in a few queries (a burst of small runs
        would otherwise cost a dozen round trips each on the one database thread)."""
        # Never what this engine already runs under another job's lease (a recovery job may name it).
        running = set(self.plans) | set(self.unplanned)
        admitted = await self.bridge.run(claim_and_plan, tickets, running=running)
        for ticket, claimed, plans, pairs, reason in admitted:
            if reason is not None or not claimed:
                if not claimed:
                    logger.info(
                        "Nothing to run: executions already taken or finished.",
                        extra={"executions": len(ticket.execution_ids)},
                    )
                if ticket.on_done is not None:
                    await self.bridge.run(ticket.on_done, RunReport(claimed=claimed), reason)
                continue
            await self.cancels.check(claimed)
            self.report.overlapped += 1
            self._hold(ticket, plans, pairs)
            for plan in plans:
                if self.cancels.is_cancelled(plan.id):
                    self._stop(plan.id)
            logger.info("Took in %d evaluations of %d executions while running.", len(pairs), len(plans))

    async def _take_more(self) -> None:
        """Keep taking jobs from the intake while there is room, until it has none left for us."""
        intake = self.intake
        if intake is None:
            return
        deadline = time.monotonic() + intake.pull_for
        while time.monotonic() < deadline:
            if not self.has_room():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), TAKE_WAIT)
                continue
            # Busy: wait a moment for a job posted meanwhile. Idle with nothing queued: we are done.
            ticket = await intake.take(wait=TAKE_WAIT if self.outstanding or self.planning else 0)
            if ticket is None:
                if not self.outstanding and not self.planning:
                    return
                await asyncio.sleep(0)  # an intake that did not wait must not starve the loop
                continue
            # What else waits right now comes along, within the room left: in executions, and in pairs
            # as estimated from those admitted so far (a burst is left to other workers too).
            tickets = [ticket]
            executions = self.max_executions - len(self.plans) - len(ticket.execution_ids)
            per_execution = max(1.0, self.admitted_pairs / max(1, self.admitted_executions))
            waiting = sum(len(queue) for queue in self.queues.values())
            pairs = self.config.concurrency - waiting - len(ticket.execution_ids) * per_execution
            while executions > 0 and pairs > 0 and len(tickets) < TAKE_BATCH:
                more = await intake.take(wait=0)
                if more is None:
                    break
                tickets.append(more)
                executions -= len(more.execution_ids)
                pairs -= len(more.execution_ids) * per_execution
            await self.admit(tickets)

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> RunReport:
        await self.cancels.start(list(self.plans))
        for execution_id in list(self.plans):
            if self.cancels.is_cancelled(execution_id):
                self._stop(execution_id)
        self.running = True
        for provider in list(self.queues):
            self._spawn(provider)
        flusher = asyncio.create_task(self._flusher())
        poller = asyncio.create_task(self._poller())
        planner = asyncio.create_task(self._plan_rest())
        main = asyncio.create_task(self._until_done())
        try:
            # If writing results or polling fails, the run is over: no point calling models we cannot record.
            tasks = [main, flusher, poller, planner]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            while main not in done:
                for task in (flusher, poller, planner):
                    if task in done and (task is not planner or task.exception() is not None):
                        main.cancel()
                        task.result()  # raises what broke it
                tasks = [task for task in tasks if task not in done]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await main
        finally:
            self.running = False
            self.flush_now.set()
            poller.cancel()
            planner.cancel()
            main.cancel()
            for task in list(self.tasks):
                task.cancel()
            outcomes = await asyncio.gather(main, flusher, poller, planner, *self.tasks, return_exceptions=True)
            try:
                await self._flush()
            finally:
                await self._close()
        for outcome in outcomes[1:4]:
            if isinstance(outcome, Exception):
                raise outcome
        self.report.calls, self.report.retries = self.caller.calls, self.caller.retries
        own = self.own.report if self.own is not None else self.report
        self.report.own_results, self.report.own_claimed = own.results, len(own.claimed)
        return self.report

    async def _until_done(self) -> None:
        await self._take_more()
        while self.outstanding or self.planning:
            self.changed.clear()
            await self.changed.wait()

    async def _close(self) -> None:
        await self.caller.aclose()
        await self.cancels.aclose()

    def _spawn(self, provider: str) -> None:
        """Start worker tasks for a provider's queue, up to its concurrency."""
        queue = self.queues[provider]
        limit = self.config.provider_concurrency.get(provider, self.config.concurrency)
        for _ in range(max(0, min(limit - self.alive[provider], len(queue)))):
            self.alive[provider] += 1
            task = asyncio.create_task(self._worker(provider, queue))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _worker(self, provider: str, queue: deque[Pair]) -> None:
        try:
            while queue:
                await self._process(queue.popleft())
        finally:
            # No await between the empty queue and this: a pair admitted meanwhile sees the right count.
            self.alive[provider] -= 1

    async def _process(self, pair: Pair) -> None:
        plan = pair.plan
        if plan.id in self.stopped:
            self._settle(plan, None)
            return
        held = self.held.get(plan.lease)
        with request_id_context(plan.request_id), continued(held.ticket.trace if held is not None else None):
            task = asyncio.ensure_future(self.evaluator.evaluate(pair))
            self.inflight[plan.id].add(task)
            try:
                result = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling()):
                    raise
                result = None  # the execution was cancelled while this call was in flight
            except Exception:
                logger.exception("Evaluating %s on %s crashed.", plan.id, pair.model.name)
                result = self.evaluator.failed(pair, InternalProviderError("The engine failed on this pair."), 0, None)
            finally:
                self.inflight[plan.id].discard(task)
        self._settle(plan, result)

    def _settle(self, plan: Plan, result: TestResult | None) -> None:
        if result is not None:
            self.buffer.append(result)
            self.report.results += 1
            held = self.held.get(plan.lease)
            if held is not None:
                held.report.results += 1
            if len(self.buffer) >= FLUSH_MAX:
                self.flush_now.set()
        plan.remaining -= 1
        if plan.remaining == 0:
            self.finished.add(plan.id)
            self.flush_now.set()
        self.outstanding -= 1
        self.changed.set()

    def _stop(self, execution_id: str) -> None:
        """No more calls for this execution; calls in flight are abandoned."""
        if execution_id in self.stopped:
            return
        self.stopped.add(execution_id)
        self.cancels.known.add(execution_id)
        for task in list(self.inflight.get(execution_id, ())):
            task.cancel()
        logger.info("Execution %s stopped: cancelled or taken over.", execution_id)

    def _count_cache_hit(self, pair: Pair) -> None:
        self.report.cache_hits += 1
        held = self.held.get(pair.plan.lease)
        if held is not None:
            held.report.cache_hits += 1

    # -- background tasks ------------------------------------------------------------------------
    async def _flusher(self) -> None:
        while self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_now.wait(), FLUSH_INTERVAL)
            self.flush_now.clear()
            await self._flush()

    async def _flush(self) -> None:
        pending = self.for_analytics or self.budgets.pending()  # what the last flush must still do
        if not self.buffer and not self.finished and (self.running or not pending):
            return
        results, self.buffer = self.buffer, []
        finished, self.finished = self.finished, set()
        batches: dict[str, tuple[list[TestResult], set[str]]] = defaultdict(lambda: ([], set()))
        for result in results:
            batches[self.plans[str(result.execution_id)].lease][0].append(result)
        for execution_id in finished:
            batches[self.plans[execution_id].lease][1].add(execution_id)
        lost, saved = await self.bridge.run(write_by_lease, dict(batches), watch=self.budgets, final=not self.running)
        for execution_id in lost:
            self.report.lost.add(execution_id)
            self._stop(execution_id)
        for result in saved:
            # Saved; analytics need only the numbers, so drop the bulky text while it waits.
            result.raw_output, result.parsed_output, result.evaluation_details = "", None, {}
        self.for_analytics += saved
        ended = self._close_executions(finished)
        if ended:
            await self.bridge.run(end_tickets, ended)
        if self.for_analytics and (not self.running or time.monotonic() - self.analytics_at >= ANALYTICS_INTERVAL):
            batch, self.for_analytics = self.for_analytics, []
            self.analytics_at = time.monotonic()
            await self.bridge.run(results_saved_send, results=batch)

    def _close_executions(self, closed: set[str]) -> list[HeldTicket]:
        """Forget executions whose final status is saved; return the tickets that have none left open."""
        ended: list[HeldTicket] = []
        for execution_id in closed:
            plan = self.plans.pop(execution_id)
            self.evaluator.forget(execution_id)
            self.inflight.pop(execution_id, None)
            held = self.held.get(plan.lease)
            if held is None:
                continue
            held.open.discard(execution_id)
            held.report.lost |= self.report.lost & {execution_id}
            if not held.open:
                ended.append(held)
                if held is not self.own:
                    del self.held[plan.lease]
        if closed:
            self.changed.set()
        return ended

    async def _poller(self) -> None:
        last_beat = time.monotonic()
        while self.running:
            await asyncio.sleep(POLL_INTERVAL)
            active: dict[str, list[str]] = defaultdict(list)
            for plan in self.plans.values():
                if plan.remaining > 0 and plan.id not in self.stopped:
                    active[plan.lease].append(plan.id)
            beat = time.monotonic() - last_beat >= self.config.heartbeat_every
            if beat:
                last_beat = time.monotonic()
                if self.intake is not None:
                    await self.bridge.run(self.intake.heartbeat)
            if not active:
                continue
            gone = await self.bridge.run(poll_by_lease, dict(active), heartbeat=beat)
            for execution_id in gone:
                self._stop(execution_id)
