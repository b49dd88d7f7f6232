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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from catalog.models import LLMModel
from evaluations.models import TestResult
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


class Engine:
    """Runs the planned pairs of the executions one job holds, inside one event loop."""

    def __init__(self, *, bridge: DatabaseBridge, lease: str, plans: Sequence[Plan], pairs: Sequence[Pair]) -> None:
        self.bridge = bridge
        self.lease = lease
        self.plans = {plan.id: plan for plan in plans}
        self.pairs = pairs
        self.config = EngineSettings.from_settings()
        self.report = RunReport(claimed=list(self.plans))
        self.stopped: set[str] = set()  # executions no longer ours to run (cancelled, lease lost)
        self.inflight: dict[str, set[asyncio.Task[Any]]] = defaultdict(set)
        self.buffer: list[TestResult] = []  # results waiting to be saved
        self.finished: set[str] = {plan.id for plan in plans if plan.remaining == 0}  # waiting to be closed
        self.for_analytics: list[TestResult] = []  # saved, waiting to be announced
        self.analytics_at = time.monotonic()
        self.scorers: dict[str, Scorer] = {}
        self.cancels = CancelWatch(self.config.redis_url, on_cancel=self._stop)
        self.caller = ProviderCaller(
            limits=self.config, is_stopped=self.stopped.__contains__, is_cancelled=self.cancels.is_cancelled
        )
        self.flush_now = asyncio.Event()
        self.running = False

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> RunReport:
        await self.cancels.start(list(self.plans))
        self.running = True
        queues: dict[str, deque[Pair]] = defaultdict(deque)
        for pair in self.pairs:
            queues[pair.model.provider].append(pair)
        flusher = asyncio.create_task(self._flusher())
        poller = asyncio.create_task(self._poller())
        workers: list[asyncio.Task[None]] = []
        for provider, queue in queues.items():
            limit = self.config.provider_concurrency.get(provider, self.config.concurrency)
            workers += [asyncio.create_task(self._worker(queue)) for _ in range(max(1, min(limit, len(queue))))]
        everything: asyncio.Future[Any] = asyncio.gather(*workers)
        try:
            # If writing results or polling fails, the run is over: no point calling models we cannot record.
            watched: list[asyncio.Future[Any]] = [everything, flusher, poller]
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in (flusher, poller):
                if task in done:
                    everything.cancel()
                    task.result()  # raises what broke it
            await everything
        finally:
            self.running = False
            self.flush_now.set()
            poller.cancel()
            everything.cancel()
            outcomes = await asyncio.gather(everything, flusher, poller, return_exceptions=True)
            try:
                await self._flush()
            finally:
                await self._close()
        for outcome in outcomes[1:]:
            if isinstance(outcome, Exception):
                raise outcome
        self.report.calls, self.report.retries = self.caller.calls, self.caller.retries
        return self.report

    async def _close(self) -> None:
        await self.caller.aclose()
        await self.cancels.aclose()

    async def _worker(self, queue: deque[Pair]) -> None:
        while queue:
            await self._process(queue.popleft())

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
            if len(self.buffer) >= FLUSH_MAX:
                self.flush_now.set()
        plan.remaining -= 1
        if plan.remaining == 0:
            self.finished.add(plan.id)
            self.flush_now.set()

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
        lost, saved = await self.bridge.run(write_results, lease=self.lease, results=results, finished=finished)
        for execution_id in lost:
            self.report.lost.add(execution_id)
            self._stop(execution_id)
        for result in saved:
            # Saved; analytics need only the numbers, so drop the bulky text while it waits.
            result.raw_output, result.parsed_output, result.evaluation_details = "", None, {}
        self.for_analytics += saved
        if self.for_analytics and (not self.running or time.monotonic() - self.analytics_at >= ANALYTICS_INTERVAL):
            batch, self.for_analytics = self.for_analytics, []
            self.analytics_at = time.monotonic()
            await self.bridge.run(results_saved_send, results=batch)

    async def _poller(self) -> None:
        last_beat = time.monotonic()
        while self.running:
            await asyncio.sleep(POLL_INTERVAL)
            active = [plan.id for plan in self.plans.values() if plan.remaining > 0 and plan.id not in self.stopped]
            if not active:
                continue
            beat = time.monotonic() - last_beat >= self.config.heartbeat_every
            if beat:
                last_beat = time.monotonic()
            gone = await self.bridge.run(poll_executions, lease=self.lease, execution_ids=active, heartbeat=beat)
            for execution_id in gone:
                self._stop(execution_id)


def run_executions(
    execution_ids: Sequence[Any], *, lease: str = "", takeover_stale_after: float | None = None
) -> RunReport:
    """Claim the given executions and run every missing (execution, model) pair; safe to call twice.

    Runs on the calling thread's database connection (all writes happen here); the provider calls run
    in an event loop on a helper thread.
    """
    lease = lease or uuid.uuid4().hex
    ids = [str(execution_id) for execution_id in execution_ids]
    claimed = claim_executions(ids, lease=lease, takeover_stale_after=takeover_stale_after)
    if not claimed:
        logger.info("Nothing to run: executions already taken or finished.", extra={"executions": len(ids)})
        return RunReport()
    try:
        plans, pairs = plan_executions(claimed)
    except Exception as exc:
        fail_executions(lease=lease, execution_ids=claimed, message=f"Could not start: {exc}")
        raise
    logger.info("Running %d evaluations of %d executions.", len(pairs), len(plans))

    async def main(bridge: DatabaseBridge) -> RunReport:
        return await Engine(bridge=bridge, lease=lease, plans=plans, pairs=pairs).run()

    request_ids = {plan.request_id for plan in plans}
    # Two busy threads (event loop, database writes): a short GIL switch interval keeps the loop from
    # waiting up to 5 ms for the GIL after every socket call while the other thread builds SQL.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.001))
    try:
        with request_id_context(request_ids.pop() if len(request_ids) == 1 else ""):
            report = DatabaseBridge().serve(main)
    except Exception as exc:
        logger.exception("The evaluation engine crashed.")
        fail_executions(lease=lease, execution_ids=claimed, message=f"Internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        sys.setswitchinterval(switch_interval)
    if report.calls:
        _refresh_health({pair.model.pk for pair in pairs})
    logger.info(
        "Finished %d results (%d calls, %d retries, %d cached).",
        report.results,
        report.calls,
        report.retries,
        report.cache_hits,
    )
    return report


def _refresh_health(model_ids: set[Any]) -> None:
    """The models' health from their latest calls, now that this run's are saved (never fails the run)."""
    try:
        models_health_refresh(model_ids=list(model_ids))
    except Exception:
        logger.exception("Deriving the health of %d models failed.", len(model_ids))
