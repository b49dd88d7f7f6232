"""The evaluation engine: one asyncio loop runs every pair of the executions a job holds.

One job may hold many executions (a batch), so one worker overlaps the provider calls of all of
them; each execution still has its own row, counters, status and cancel. Limits: a global and a
per-provider concurrency, a per-provider requests-per-minute shared through Redis, the test's timeout
per call, bounded retries with backoff and full jitter, and a circuit breaker per provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from catalog.models import LLMModel
from evaluations.models import TestResult
from evaluations.runner import notify
from evaluations.runner.bridge import DatabaseBridge
from evaluations.runner.calls import CallLimits, InternalProviderError, ProviderCaller
from evaluations.runner.cancellation import CancelWatch
from evaluations.runner.planning import Pair, Plan, plan_executions
from evaluations.runner.writes import claim_executions, fail_executions, poll_executions, write_results
from evaluations.scoring import Scorer, ScoringError, scorer_for
from evaluations.services import models_health_refresh
from evaluations.signals import results_saved_send
from openbench.logging import request_id_context
from providers import metrics
from providers.base import GenerationRequest, GenerationResponse, ProviderError
from providers.pricing import cost_for

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


@dataclass(frozen=True)
class EngineSettings(CallLimits):
    """The engine's knobs, read once per job from settings: those of the calls, and the heartbeat's."""

    heartbeat_every: float

    @classmethod
    def from_settings(cls) -> EngineSettings:
        return cls(
            concurrency=settings.EVAL_CONCURRENCY,
            provider_concurrency=dict(settings.PROVIDER_CONCURRENCY),
            provider_rpm=dict(settings.PROVIDER_RPM),
            max_attempts=settings.EVAL_MAX_ATTEMPTS,
            backoff_base=settings.EVAL_BACKOFF_BASE_SECONDS,
            backoff_max=settings.EVAL_BACKOFF_MAX_SECONDS,
            breaker_threshold=settings.EVAL_BREAKER_THRESHOLD,
            breaker_cooldown=settings.EVAL_BREAKER_COOLDOWN_SECONDS,
            heartbeat_every=max(1.0, min(15.0, settings.EVAL_STALE_AFTER_SECONDS / 4)),
            redis_url=settings.REDIS_URL,
        )


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
class _Held:
    """A ticket the engine runs: the executions not yet closed, and what it did."""

    ticket: Ticket
    open: set[str]
    report: RunReport


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
    ) -> None:
        self.bridge = bridge
        self.intake = intake
        self.config = EngineSettings.from_settings()
        self.max_executions = max(1, max_executions or settings.EVAL_WORKER_MAX_EXECUTIONS)
        self.plans: dict[str, Plan] = {}  # executions still open (pairs to run, or results to close them)
        self.report = RunReport()
        self.held: dict[str, _Held] = {}  # by lease
        self.stopped: set[str] = set()  # executions no longer ours to run (cancelled, lease lost)
        self.inflight: dict[str, set[asyncio.Task[Any]]] = defaultdict(set)
        self.queues: dict[str, deque[Pair]] = defaultdict(deque)  # pairs waiting, by provider
        self.alive: dict[str, int] = defaultdict(int)  # worker tasks, by provider
        self.tasks: set[asyncio.Task[None]] = set()
        self.outstanding = 0  # pairs admitted and not settled
        self.admitted_pairs = self.admitted_executions = 0  # for the size of a job yet to be planned
        self.models_called: set[Any] = set()
        self.buffer: list[TestResult] = []  # results waiting to be saved
        self.finished: set[str] = set()  # executions waiting to be closed
        self.for_analytics: list[TestResult] = []  # saved, waiting to be announced
        self.analytics_at = time.monotonic()
        self.scorers: dict[str, Scorer] = {}
        self.cancels = CancelWatch(self.config.redis_url, on_cancel=self._stop)
        self.caller = ProviderCaller(
            limits=self.config, is_stopped=self.stopped.__contains__, is_cancelled=self.cancels.is_cancelled
        )
        self.flush_now = asyncio.Event()
        self.changed = asyncio.Event()  # a pair settled or an execution closed: room may have freed up
        self.running = False
        if plans or lease:
            self._hold(Ticket(execution_ids=[plan.id for plan in plans], lease=lease), plans, pairs)
        self.own = self.held.get(lease)  # the job that started the engine

    # -- admitting work --------------------------------------------------------------------------
    def has_room(self) -> bool:
        """Whether to take another job: fewer executions than the limit, and not even one call's worth of
        pairs waiting per slot. A worker takes what it can start soon and leaves the rest of a burst
        on the queue for other workers (fairness)."""
        waiting = sum(len(queue) for queue in self.queues.values())
        return len(self.plans) < self.max_executions and waiting < self.config.concurrency

    def _hold(self, ticket: Ticket, plans: Sequence[Plan], pairs: Sequence[Pair]) -> _Held:
        held = _Held(ticket=ticket, open={plan.id for plan in plans}, report=RunReport(claimed=[p.id for p in plans]))
        self.held[ticket.lease] = held
        self.report.claimed += held.report.claimed
        for plan in plans:
            plan.lease = ticket.lease
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
        return held

    async def admit(self, tickets: Sequence[Ticket]) -> None:
        """Claim jobs' executions and run them alongside those already running (from the loop).

        Jobs taken together are claimed and planned together, in a few queries (a burst of small runs
        would otherwise cost a dozen round trips each on the one database thread)."""
        # Never what this engine already runs under another job's lease (a recovery job may name it).
        running = set(self.plans)
        admitted = await self.bridge.run(_claim_and_plan, tickets, running=running)
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
            ticket = await intake.take(wait=TAKE_WAIT if self.outstanding else 0)
            if ticket is None:
                if not self.outstanding:
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
        main = asyncio.create_task(self._until_done())
        try:
            # If writing results or polling fails, the run is over: no point calling models we cannot record.
            done, _ = await asyncio.wait([main, flusher, poller], return_when=asyncio.FIRST_COMPLETED)
            for task in (flusher, poller):
                if task in done:
                    main.cancel()
                    task.result()  # raises what broke it
            await main
        finally:
            self.running = False
            self.flush_now.set()
            poller.cancel()
            main.cancel()
            for task in list(self.tasks):
                task.cancel()
            outcomes = await asyncio.gather(main, flusher, poller, *self.tasks, return_exceptions=True)
            try:
                await self._flush()
            finally:
                await self._close()
        for outcome in outcomes[1:3]:
            if isinstance(outcome, Exception):
                raise outcome
        self.report.calls, self.report.retries = self.caller.calls, self.caller.retries
        own = self.own.report if self.own is not None else self.report
        self.report.own_results, self.report.own_claimed = own.results, len(own.claimed)
        return self.report

    async def _until_done(self) -> None:
        await self._take_more()
        while self.outstanding:
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
        with request_id_context(plan.request_id):
            task = asyncio.ensure_future(self._evaluate(pair))
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
                result = self._failed(pair, InternalProviderError("The engine failed on this pair."), 0, None)
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

    # -- one pair --------------------------------------------------------------------------------
    async def _evaluate(self, pair: Pair) -> TestResult | None:
        if pair.cached is not None:
            return await self._from_cache(pair)
        self.models_called.add(pair.model.pk)
        call = await self.caller.call(pair.model, pair.request, execution_id=pair.plan.id)
        if call is None:
            return None
        if call.response is None:
            assert call.error is not None
            return self._failed(pair, call.error, call.attempts, call.latency_ms)
        return await self._scored(pair, call.response, attempts=call.attempts, latency_ms=call.latency_ms)

    async def _from_cache(self, pair: Pair) -> TestResult | None:
        if self.cancels.is_cancelled(pair.plan.id):
            return None
        cached = pair.cached or {}
        self.report.cache_hits += 1
        held = self.held.get(pair.plan.lease)
        if held is not None:
            held.report.cache_hits += 1
        metrics.record_cache_hit(pair.model.provider, pair.model.name)
        response = GenerationResponse(
            text=cached["raw_output"],
            latency_ms=cached["latency_ms"] or 0,
            request_id=cached["provider_request_id"],
            finish_reason=cached["finish_reason"],
        )
        result = await self._scored(pair, response, attempts=0, latency_ms=cached["latency_ms"], cached=True)
        if result is not None:
            result.input_tokens = cached["input_tokens"]
            result.output_tokens = cached["output_tokens"]
            result.total_tokens = cached["total_tokens"]
            result.evaluation_details = {**result.evaluation_details, "cached_from": str(cached["id"])}
        return result

    def _scorer(self, plan: Plan) -> Scorer:
        scorer = self.scorers.get(plan.id)
        if scorer is None:
            scorer = scorer_for(
                plan.target.evaluation_type,
                judge_model=plan.judge_model,
                judge_call=self._judge_call,
                judge_timeout=plan.timeout,
            )
            self.scorers[plan.id] = scorer
        return scorer

    async def _scored(
        self, pair: Pair, response: GenerationResponse, *, attempts: int, latency_ms: int | None, cached: bool = False
    ) -> TestResult:
        result = self._result(pair, attempts=attempts, latency_ms=latency_ms)
        result.raw_output = response.text
        result.provider_request_id = (response.request_id or "")[:200]
        result.finish_reason = (response.finish_reason or "")[:32]
        result.cached = cached
        if not cached:
            usage = response.usage
            result.input_tokens, result.output_tokens = usage.input_tokens, usage.output_tokens
            result.total_tokens = usage.total_tokens
            result.cost = cost_for(pair.model, usage)
            result.response_key = pair.response_key
        try:
            outcome = await self._scorer(pair.plan).ascore(response.text, pair.plan.target)
        except ScoringError as exc:
            result.status = TestResult.Status.FAILED
            result.error_type = "judge_error" if pair.plan.target.evaluation_type == "llm_judge" else "scoring_error"
            result.error_message = exc.message
            result.evaluation_details = exc.details
            result.judge_tokens, result.judge_cost = exc.judge_tokens, exc.judge_cost
            result.parsed_output = response.parsed
            result.response_key = ""  # an unscored answer is no template for the cache
            return result
        except Exception as exc:  # a scorer bug fails this result, not the whole job
            logger.exception("Scoring %s on %s crashed.", pair.plan.id, pair.model.name)
            result.status = TestResult.Status.FAILED
            result.error_type = "scoring_error"
            # Only the exception's class: its text may hold anything (a document, a secret); it is in the log.
            result.error_message = f"The scorer failed with {type(exc).__name__}; the details are in the worker log."
            result.response_key = ""
            return result
        result.status = TestResult.Status.COMPLETED
        result.score = outcome.score
        result.is_correct = outcome.is_correct
        result.evaluation_details = outcome.details
        result.parsed_output = outcome.parsed_output if outcome.parsed_output is not None else response.parsed
        result.judge_tokens, result.judge_cost = outcome.judge_tokens, outcome.judge_cost
        return result

    def _result(self, pair: Pair, *, attempts: int, latency_ms: int | None) -> TestResult:
        return TestResult(
            execution_id=uuid.UUID(pair.plan.id),
            test_case_id=pair.plan.test_case_id,
            revision=pair.plan.revision,
            model=pair.model,
            attempts=attempts,
            latency_ms=latency_ms,
            executed_at=timezone.now(),
        )

    def _failed(self, pair: Pair, error: ProviderError, attempts: int, latency_ms: int | None) -> TestResult:
        result = self._result(pair, attempts=attempts, latency_ms=latency_ms)
        result.status = TestResult.Status.TIMEOUT if error.kind == "timeout" else TestResult.Status.FAILED
        result.error_type = error.kind[:32]
        result.error_message = error.message  # composed by the adapter (ProviderError.message); capped on write
        result.evaluation_details = {"status_code": error.status_code} if error.status_code else {}
        return result

    async def _judge_call(self, model: LLMModel, request: GenerationRequest) -> GenerationResponse:
        call = await self.caller.call(model, request)
        assert call is not None
        if call.response is None:
            assert call.error is not None
            raise call.error
        return call.response

    # -- background tasks ------------------------------------------------------------------------
    async def _flusher(self) -> None:
        while self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_now.wait(), FLUSH_INTERVAL)
            self.flush_now.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self.buffer and not self.finished and (self.running or not self.for_analytics):
            return
        results, self.buffer = self.buffer, []
        finished, self.finished = self.finished, set()
        batches: dict[str, tuple[list[TestResult], set[str]]] = defaultdict(lambda: ([], set()))
        for result in results:
            batches[self.plans[str(result.execution_id)].lease][0].append(result)
        for execution_id in finished:
            batches[self.plans[execution_id].lease][1].add(execution_id)
        lost, saved = await self.bridge.run(_write_by_lease, dict(batches))
        for execution_id in lost:
            self.report.lost.add(execution_id)
            self._stop(execution_id)
        for result in saved:
            # Saved; analytics need only the numbers, so drop the bulky text while it waits.
            result.raw_output, result.parsed_output, result.evaluation_details = "", None, {}
        self.for_analytics += saved
        ended = self._close_executions(finished)
        if ended:
            await self.bridge.run(_end_tickets, ended)
        if self.for_analytics and (not self.running or time.monotonic() - self.analytics_at >= ANALYTICS_INTERVAL):
            batch, self.for_analytics = self.for_analytics, []
            self.analytics_at = time.monotonic()
            await self.bridge.run(results_saved_send, results=batch)

    def _close_executions(self, closed: set[str]) -> list[_Held]:
        """Forget executions whose final status is saved; return the tickets that have none left open."""
        ended: list[_Held] = []
        for execution_id in closed:
            plan = self.plans.pop(execution_id)
            self.scorers.pop(execution_id, None)
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
            gone = await self.bridge.run(_poll_by_lease, dict(active), heartbeat=beat)
            for execution_id in gone:
                self._stop(execution_id)


def _write_by_lease(batches: dict[str, tuple[list[TestResult], set[str]]]) -> tuple[set[str], list[TestResult]]:
    """write_results for each job's lease (a transaction each); then say which executions are closed."""
    lost: set[str] = set()
    saved: list[TestResult] = []
    closed: list[str] = []
    for lease, (results, finished) in batches.items():
        lost_here, saved_here = write_results(lease=lease, results=results, finished=finished)
        lost |= lost_here
        saved += saved_here
        closed += [execution_id for execution_id in finished if execution_id not in lost_here]
    notify.executions_finished(closed)
    return lost, saved


def _claim_and_plan(
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
                failed[ticket.lease] = f"Could not start: {exc}"
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


def _claim_quickly(ticket: Ticket, running: set[str]) -> list[str]:
    """claim_executions for one ticket, but in one statement for the common case (pending executions of a
    first delivery); a retry or a takeover goes through claim_executions itself."""
    from evaluations.models import Execution

    wanted = [execution_id for execution_id in ticket.execution_ids if execution_id not in running]
    if not wanted:
        return []
    if ticket.takeover_stale_after is None and len(wanted) <= 1000:
        now = timezone.now()
        taken = Execution.objects.filter(pk__in=wanted, status=Execution.Status.PENDING).update(
            status=Execution.Status.RUNNING, started_at=now, heartbeat_at=now, lease_token=ticket.lease
        )
        if taken == len(wanted):
            return wanted
    # Some were not pending: a retry of the same job, a takeover, a duplicate; the full rule decides.
    return claim_executions(wanted, lease=ticket.lease, takeover_stale_after=ticket.takeover_stale_after)


def _poll_by_lease(active: dict[str, list[str]], *, heartbeat: bool) -> set[str]:
    gone: set[str] = set()
    for lease, execution_ids in active.items():
        gone |= poll_executions(lease=lease, execution_ids=execution_ids, heartbeat=heartbeat)
    return gone


def _end_tickets(ended: Sequence[_Held]) -> None:
    """Tell each job's queue that the job is over (on the database thread, after its executions closed)."""
    for held in ended:
        if held.ticket.on_done is None:
            continue
        try:
            held.ticket.on_done(held.report, None)
        except Exception:  # the executions are closed; a queue that cannot be told must not stop the others
            logger.exception("Could not record the end of job %s.", held.ticket.lease)


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
    try:
        plans, pairs = plan_executions(claimed, lease=lease) if claimed else ([], [])
    except Exception as exc:
        fail_executions(lease=lease, execution_ids=claimed, message=f"Could not start: {exc}")
        raise
    logger.info("Running %d evaluations of %d executions.", len(pairs), len(plans))
    engines: list[Engine] = []

    async def main(bridge: DatabaseBridge) -> RunReport:
        engine = Engine(bridge=bridge, lease=lease, plans=plans, pairs=pairs, intake=intake)
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
    if engine.models_called:
        _refresh_health(engine.models_called)
    logger.info(
        "Finished %d results (%d calls, %d retries, %d cached, %d jobs taken in).",
        report.results,
        report.calls,
        report.retries,
        report.cache_hits,
        report.overlapped,
    )
    return report


def _fail_held(held: Iterable[_Held], *, own: str, claimed: Sequence[str], exc: BaseException) -> None:
    """After a crash: fail every execution still open under its own lease, and end the jobs taken in."""
    message = f"Internal error: {type(exc).__name__}: {exc}"
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
