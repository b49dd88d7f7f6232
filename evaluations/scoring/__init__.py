"""Scoring: one Scorer per evaluation type (SPEC §4), chosen by `scorer_for`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evaluations.scoring.base import ScoreOutcome, Scorer, ScoringError, ScoringTarget

if TYPE_CHECKING:
    from catalog.models import LLMModel
    from evaluations.scoring.judge import JudgeCall

__all__ = ["ScoreOutcome", "Scorer", "ScoringError", "ScoringTarget", "scorer_for"]


def scorer_for(
    evaluation_type: str,
    *,
    judge_model: LLMModel | None = None,
    judge_call: JudgeCall | None = None,
    judge_timeout: float = 60.0,
) -> Scorer:
    """The scorer of an evaluation type; the judge needs its model (resolved off the event loop) and a caller."""
    # Imported here, not with the package: planning and the estimates import ScoringTarget from it, and
    # the structured scorer brings jsonschema (~0.06 s of CPU) into every process that starts a run.
    # Workers import them before they fork (settings.WORKER_PRELOAD).
    from evaluations.scoring.exact import ExactMatchScorer
    from evaluations.scoring.judge import LLMJudgeScorer
    from evaluations.scoring.registry import CustomScorerAdapter
    from evaluations.scoring.structured import StructuredMatchScorer

    if evaluation_type == ExactMatchScorer.evaluation_type:
        return ExactMatchScorer()
    if evaluation_type == StructuredMatchScorer.evaluation_type:
        return StructuredMatchScorer()
    if evaluation_type == CustomScorerAdapter.evaluation_type:
        return CustomScorerAdapter()
    if evaluation_type == LLMJudgeScorer.evaluation_type:
        return LLMJudgeScorer(judge_model=judge_model, call=judge_call, timeout=judge_timeout)
    raise ValueError(f"Unknown evaluation type {evaluation_type!r}.")
