"""Registry of `custom` scorers: built-ins and project ones, registered with a decorator.

No user-supplied code ever runs: a test only names a scorer here, with a config that the
scorer's JSON Schema validates when the test is saved. A project adds scorers in a module
named `scorers.py` in any installed app (imported at start-up by EvaluationsConfig.ready), e.g.::

    from evaluations.scoring.registry import register_scorer

    @register_scorer("starts_with", config_schema={"type": "object", "properties": {}})
    def starts_with(answer, expected, config):
        ok = answer.strip().startswith(str(expected))
        return ScoreOutcome(score=float(ok), is_correct=ok)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from evaluations.scoring.base import ScoreOutcome, Scorer, ScoringError, ScoringTarget

ScorerFunc = Callable[[str, Any, dict[str, Any]], ScoreOutcome]


@dataclass(frozen=True)
class CustomScorer:
    """A named scoring function (answer, expected output, config) -> ScoreOutcome."""

    name: str
    func: ScorerFunc
    config_schema: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # May take long on one answer (and releases the GIL while it does): the engine runs it in a thread,
    # so the calls of every other evaluation go on meanwhile.
    blocking: bool = False


_REGISTRY: dict[str, CustomScorer] = {}


def _qualname(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"


def register_scorer(
    name: str, *, config_schema: dict[str, Any] | None = None, description: str = "", blocking: bool = False
) -> Callable[[ScorerFunc], ScorerFunc]:
    """Register a custom scorer under `name`; its config (minus `scorer`) must satisfy `config_schema`.

    Registering the same function again (a module imported twice, an autoreload) is harmless;
    a different function under a taken name is a mistake and raises.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"A scorer name must be letters, digits, '_' or '-', not {name!r}.")
    schema = config_schema if config_schema is not None else {"type": "object"}

    def decorator(func: ScorerFunc) -> ScorerFunc:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing.func) != _qualname(func):
            raise ValueError(f"A custom scorer named {name!r} is already registered ({_qualname(existing.func)}).")
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = CustomScorer(
            name=name,
            func=func,
            config_schema=schema,
            description=description or (doc[0] if doc else ""),
            blocking=blocking,
        )
        return func

    return decorator


def _load_builtins() -> None:
    # Imported for its @register_scorer side effects; kept lazy so catalog can import this module.
    from evaluations.scoring import custom  # noqa: F401


def get_custom_scorer(name: str) -> CustomScorer | None:
    _load_builtins()
    return _REGISTRY.get(name)


def custom_scorer_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


class CustomScorerAdapter(Scorer):
    """`custom`: runs the registered scorer that evaluation_config.scorer names, with the rest of the config."""

    evaluation_type: ClassVar[str] = "custom"

    @staticmethod
    def _scorer(target: ScoringTarget) -> CustomScorer:
        name = str(target.evaluation_config.get("scorer") or "")
        scorer = get_custom_scorer(name)
        if scorer is None:
            raise ScoringError(f"Unknown custom scorer {name!r}.", details={"scorer": name})
        return scorer

    async def ascore(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        if self._scorer(target).blocking:
            return await asyncio.to_thread(self.score, answer, target)
        return self.score(answer, target)

    def score(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        scorer = self._scorer(target)
        name = scorer.name
        options = {key: value for key, value in target.evaluation_config.items() if key != "scorer"}
        outcome = scorer.func(answer, target.expected_output, options)
        return ScoreOutcome(
            score=outcome.score,
            is_correct=outcome.is_correct,
            details={"scorer": name, **outcome.details},
            parsed_output=outcome.parsed_output,
        )
