"""The one small interface every scorer implements, and what a scorer returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar


@dataclass(frozen=True)
class ScoreOutcome:
    """A scored answer: score in [0, 1], whether it passes, and what was compared (for the result row)."""

    score: float
    is_correct: bool
    details: dict[str, Any] = field(default_factory=dict)
    parsed_output: Any = None
    # Set by the LLM judge: what judging this answer cost, recorded on the result.
    judge_tokens: int | None = None
    judge_cost: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"A score must lie in [0, 1], got {self.score}.")


class ScoringError(Exception):
    """The answer could not be scored (e.g. the judge failed): the result fails with this reason, never a silent 0."""

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        judge_tokens: int | None = None,
        judge_cost: Decimal = Decimal("0"),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.judge_tokens = judge_tokens
        self.judge_cost = judge_cost


@dataclass(frozen=True)
class ScoringTarget:
    """What an answer is scored against: a test case at one revision (see TestCase.scored_snapshot)."""

    prompt: str
    expected_output: Any
    evaluation_type: str
    evaluation_config: dict[str, Any] = field(default_factory=dict)
    system_prompt: str = ""
    output_schema: dict[str, Any] | bool | None = None

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> ScoringTarget:
        return cls(
            prompt=snapshot["prompt"],
            system_prompt=snapshot.get("system_prompt") or "",
            expected_output=snapshot.get("expected_output"),
            output_schema=snapshot.get("output_schema"),
            evaluation_type=snapshot["evaluation_type"],
            evaluation_config=dict(snapshot.get("evaluation_config") or {}),
        )


class Scorer(abc.ABC):
    """Turns (answer, test) into a ScoreOutcome; raises ScoringError when it cannot judge."""

    evaluation_type: ClassVar[str]

    @abc.abstractmethod
    def score(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        """Score synchronously."""

    async def ascore(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        """Score from the engine's event loop; only scorers that call out (the judge) override this."""
        return self.score(answer, target)
