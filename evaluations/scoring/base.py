"""What every scorer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoreOutcome:
    """A scored answer: score in [0, 1], whether it passes, and what was compared (for the result row)."""

    score: float
    is_correct: bool
    details: dict[str, Any] = field(default_factory=dict)
    parsed_output: Any = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"A score must lie in [0, 1], got {self.score}.")
