"""`llm_judge`: a judge model grades the answer against the reference and an optional rubric."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from evaluations.scoring.base import ScoreOutcome, Scorer, ScoringError, ScoringTarget
from evaluations.scoring.cascade import DECIDED_BY_JUDGE, cascade_decision, cascade_enabled
from evaluations.scoring.extraction import is_number
from providers.base import GenerationRequest, GenerationResponse, ProviderError
from providers.json_answers import extract_json
from providers.pricing import cost_for

if TYPE_CHECKING:
    from catalog.models import LLMModel

JudgeCall = Callable[["LLMModel", GenerationRequest], Awaitable[GenerationResponse]]

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "pass": {"type": "boolean"},
        "reasoning": {"type": "string"},
    },
    "required": ["score", "pass", "reasoning"],
    "additionalProperties": False,
}

JUDGE_SYSTEM_PROMPT = (
    "You are a strict, impartial grader of answers given by AI models. Compare the candidate answer "
    "with the reference answer (and the rubric, when given). Reply with JSON only, exactly "
    '{"score": <number from 0 to 1>, "pass": <true|false>, "reasoning": "<one short paragraph>"}.'
)


def judge_model_name(evaluation_config: Mapping[str, Any]) -> str:
    """The judge for a test: its evaluation_config.judge_model, else settings.JUDGE_MODEL ('' when neither)."""
    return str(evaluation_config.get("judge_model") or settings.JUDGE_MODEL or "")


def resolve_judge_model(target: ScoringTarget) -> LLMModel | None:
    """The judge's registry row (active or not: a judge need not be on the leaderboard); None when unknown."""
    from catalog.models import LLMModel

    name = judge_model_name(target.evaluation_config)
    return LLMModel.objects.filter(name=name).first() if name else None


def build_judge_prompt(target: ScoringTarget, answer: str) -> str:
    reference = target.expected_output
    reference_text = reference if isinstance(reference, str) else json.dumps(reference, ensure_ascii=False)
    parts = [f"## Task given to the model\n{target.prompt}"]
    if target.system_prompt:
        parts.append(f"## System prompt the model had\n{target.system_prompt}")
    if reference is not None:
        parts.append(f"## Reference answer\n{reference_text}")
    rubric = str(target.evaluation_config.get("rubric") or "").strip()
    if rubric:
        parts.append(f"## Rubric\n{rubric}")
    parts.append(f"## Candidate answer\n{answer}")
    parts.append('Grade the candidate answer. Reply with JSON only: {"score": ..., "pass": ..., "reasoning": ...}.')
    return "\n\n".join(parts)


async def _direct_call(model: LLMModel, request: GenerationRequest) -> GenerationResponse:
    from providers.registry import provider_for_model

    provider = provider_for_model(model)
    try:
        return await asyncio.wait_for(provider.generate(request), timeout=request.timeout)
    finally:
        await provider.aclose()


class LLMJudgeScorer(Scorer):
    """Asks the judge model for {score, pass, reasoning}; any judge failure raises ScoringError with the reason.

    With `evaluation_config.cascade: true` a cheap normalised match decides first (scoring/cascade.py);
    `evaluation_details.decided_by` says which of "exact", "contains" or "judge" decided.

    `call` is how the engine reaches the judge (with its retries and limits); by default the
    provider adapter is called once directly.
    """

    evaluation_type: ClassVar[str] = "llm_judge"

    def __init__(self, *, judge_model: LLMModel | None, call: JudgeCall | None = None, timeout: float = 60.0) -> None:
        self.judge_model = judge_model
        self.call = call or _direct_call
        self.timeout = timeout

    def score(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        return asyncio.run(self.ascore(answer, target))

    async def ascore(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        if cascade_enabled(target):
            decided = cascade_decision(answer, target)
            if decided is not None:
                return decided
        judge = self.judge_model
        if judge is None:
            name = judge_model_name(target.evaluation_config)
            reason = (
                f"The judge model {name!r} is not in the model registry."
                if name
                else "No judge model: set evaluation_config.judge_model or JUDGE_MODEL."
            )
            raise ScoringError(reason, details={"judge_model": name, "decided_by": DECIDED_BY_JUDGE})
        request = GenerationRequest(
            model_id=judge.provider_model_id,
            prompt=build_judge_prompt(target, answer),
            system_prompt=JUDGE_SYSTEM_PROMPT,
            temperature=0.0,
            max_tokens=512,
            seed=judge.default_seed,
            timeout=self.timeout,
            json_schema=JUDGE_SCHEMA if (judge.supports_structured_output or judge.supports_json_mode) else None,
            reference_answer={"score": 1.0, "pass": True, "reasoning": "Matches the reference answer."},
        )
        # By id as well as by name: agreement (judging app) counts a judge's results by its registry id.
        identity = {"judge_model": judge.name, "judge_model_id": str(judge.pk), "decided_by": DECIDED_BY_JUDGE}
        try:
            response = await self.call(judge, request)
        except ProviderError as exc:
            # exc.message is a reason the adapter composed (never the vendor's body: ProviderError).
            raise ScoringError(
                f"The judge model {judge.name} failed ({exc.kind}): {exc.message}",
                details={**identity, "judge_error_type": exc.kind},
            ) from exc
        except TimeoutError as exc:
            raise ScoringError(
                f"The judge model {judge.name} did not answer within {self.timeout:g} s.",
                details={**identity, "judge_error_type": "timeout"},
            ) from exc
        tokens = response.usage.total_tokens
        cost = cost_for(judge, response.usage)
        verdict = response.parsed if isinstance(response.parsed, dict) else None
        if verdict is None:
            extracted = extract_json(response.text)
            verdict = extracted.value if extracted.found and isinstance(extracted.value, dict) else None
        problem = _verdict_problem(verdict)
        if problem:
            raise ScoringError(
                f"The judge model {judge.name} gave an unusable verdict: {problem}",
                details={**identity, "judge_raw_output": response.text[:2000]},
                judge_tokens=tokens,
                judge_cost=cost,
            )
        assert verdict is not None
        score = float(verdict["score"])
        threshold = target.evaluation_config.get("pass_threshold")
        passed = score >= float(threshold) if threshold is not None else bool(verdict["pass"])
        return ScoreOutcome(
            score=score,
            is_correct=passed,
            details={
                **identity,
                "judge_score": score,
                "judge_pass": verdict["pass"],
                "reasoning": verdict["reasoning"],
                "pass_threshold": threshold,
                "rubric": target.evaluation_config.get("rubric", ""),
            },
            judge_tokens=tokens,
            judge_cost=cost,
        )


def _quoted(value: Any, limit: int = 40) -> str:
    """A short quotation of what the judge sent: the reason names it without carrying a whole reply."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _verdict_problem(verdict: Any) -> str:
    if not isinstance(verdict, dict):
        return "no JSON object in its reply."
    score: Any = verdict.get("score")
    if not is_number(score) or not 0 <= score <= 1:
        return f"score must be a number from 0 to 1, got {_quoted(score)}."
    if not isinstance(verdict.get("pass"), bool):
        return f"pass must be true or false, got {_quoted(verdict.get('pass'))}."
    if not isinstance(verdict.get("reasoning"), str):
        return "reasoning must be a string."
    return ""
