"""Registry of `custom` scorers: built-ins and project ones, registered with a decorator.

No user-supplied code ever runs: a test only names a scorer here, with a config that the
scorer's JSON Schema validates when the test is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evaluations.scoring.base import ScoreOutcome

ScorerFunc = Callable[[str, Any, dict[str, Any]], ScoreOutcome]


@dataclass(frozen=True)
class CustomScorer:
    """A named scoring function (answer, expected output, config) -> ScoreOutcome."""

    name: str
    func: ScorerFunc
    config_schema: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, CustomScorer] = {}


def register_scorer(
    name: str, *, config_schema: dict[str, Any] | None = None, description: str = ""
) -> Callable[[ScorerFunc], ScorerFunc]:
    """Register a custom scorer under `name`; its config (minus `scorer`) must satisfy `config_schema`."""

    def decorator(func: ScorerFunc) -> ScorerFunc:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"A custom scorer named {name!r} is already registered.")
        _REGISTRY[name] = CustomScorer(
            name=name, func=func, config_schema=config_schema or {}, description=description or (func.__doc__ or "")
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
