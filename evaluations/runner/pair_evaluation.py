"""One (execution, model, sample) pair evaluated: the provider call (or the cached answer), scored, as a result.

The engine decides which pair runs when and saves what comes back; `PairEvaluator` turns one pair
into a TestResult (None when the execution was stopped meanwhile). A scorer failure fails that
result only; the text stored for it is ours, the exception is in the worker log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from catalog.models import LLMModel
from evaluations.models import TestResult
from evaluations.runner.calls import ProviderCaller
from evaluations.runner.planning import Pair, Plan
from evaluations.scoring import Scorer, ScoringError, scorer_for
from openbench import tracing
from providers import metrics
from providers.base import GenerationRequest, GenerationResponse, ProviderError, Usage
from providers.pricing import cost_for

logger = logging.getLogger("evaluations.runner.engine")  # the engine's logger: one name to filter on


class PairEvaluator:
    """Evaluates the pairs of one engine: calls through its ProviderCaller and scores the answers.

    `is_cancelled` says whether an execution was cancelled (a cached answer is then not used);
    `on_cache_hit` is told of each pair answered from the cache (the engine counts them per job).
    It keeps one scorer per execution (`forget` drops it once the execution is closed) and the models
    it called (their health is derived after the run).
    """

    def __init__(
        self,
        *,
        caller: ProviderCaller,
        is_cancelled: Callable[[str], bool],
        on_cache_hit: Callable[[Pair], None],
    ) -> None:
        self.caller = caller
        self.is_cancelled = is_cancelled
        self.on_cache_hit = on_cache_hit
        self.scorers: dict[str, Scorer] = {}
        self.models_called: set[Any] = set()

    def forget(self, execution_id: str) -> None:
        """Drop what is kept for an execution that is closed."""
        self.scorers.pop(execution_id, None)

    async def evaluate(self, pair: Pair) -> TestResult | None:
        """The pair's result, or None when its execution was stopped before it had one."""
        if pair.cached is not None:
            return await self._from_cache(pair)
        self.models_called.add(pair.model.pk)
        call = await self.caller.call(pair.model, pair.request, execution_id=pair.plan.id)
        if call is None:
            return None
        if call.response is None:
            assert call.error is not None
            return self.failed(pair, call.error, call.attempts, call.latency_ms)
        return await self._scored(pair, call.response, attempts=call.attempts, latency_ms=call.latency_ms)

    def failed(self, pair: Pair, error: ProviderError, attempts: int, latency_ms: int | None) -> TestResult:
        """The result of a pair whose call failed (or that the engine itself could not evaluate)."""
        result = self._result(pair, attempts=attempts, latency_ms=latency_ms)
        result.status = TestResult.Status.TIMEOUT if error.kind == "timeout" else TestResult.Status.FAILED
        result.error_type = error.kind[:32]
        result.error_message = error.message  # composed by the adapter (ProviderError.message); capped on write
        result.evaluation_details = {"status_code": error.status_code} if error.status_code else {}
        return result

    async def _from_cache(self, pair: Pair) -> TestResult | None:
        if self.is_cancelled(pair.plan.id):
            return None
        cached = pair.cached or {}
        self.on_cache_hit(pair)
        metrics.record_cache_hit(pair.model.provider, pair.model.name)
        response = GenerationResponse(
            text=cached["raw_output"],
            latency_ms=cached["latency_ms"] or 0,
            request_id=cached["provider_request_id"],
            finish_reason=cached["finish_reason"],
            usage=Usage(input_tokens=cached["input_tokens"], output_tokens=cached["output_tokens"]),
        )
        tracing.cached_call(pair.model, execution_id=pair.plan.id, response=response)
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
            sample=pair.sample,
            attempts=attempts,
            latency_ms=latency_ms,
            executed_at=timezone.now(),
        )

    async def _judge_call(self, model: LLMModel, request: GenerationRequest) -> GenerationResponse:
        call = await self.caller.call(model, request)
        assert call is not None
        if call.response is None:
            assert call.error is not None
            raise call.error
        return call.response
