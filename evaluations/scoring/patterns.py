"""User patterns matched under a time limit: the `regex` scorer and a schema's `pattern`s share this one helper.

Python's `re` has no time limit, and a pattern such as `(a|aa)+$` backtracks exponentially on a long run
of a's that fails at its end. The `regex` package takes a timeout and, with `concurrent=True`, releases the
GIL while it matches, so a thread matching a bad pattern never holds up the worker's other calls.
"""

from __future__ import annotations

from functools import lru_cache

import regex as regex_engine
from django.conf import settings

# Raised for a pattern that does not compile; callers report where it stumbled (exc.pos), never its text.
PatternError = regex_engine.error


class PatternTimeout(Exception):
    """Matching one pattern took longer than its limit (`limit` seconds)."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"The pattern took longer than {limit:g} s.")
        self.limit = limit


def pattern_limit() -> float:
    """How long one match of a user's pattern may take, in seconds (EVAL_REGEX_TIMEOUT_SECONDS)."""
    return float(settings.EVAL_REGEX_TIMEOUT_SECONDS)


@lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: int) -> regex_engine.Pattern[str]:
    return regex_engine.compile(pattern, flags)


def pattern_search(
    pattern: str, text: str, *, flags: int = 0, timeout: float | None = None
) -> regex_engine.Match[str] | None:
    """The first match of `pattern` in `text`, within `timeout` seconds (default: EVAL_REGEX_TIMEOUT_SECONDS).

    Raises PatternTimeout when the time runs out and PatternError when the pattern does not compile.
    """
    limit = pattern_limit() if timeout is None else timeout
    if limit <= 0:
        raise PatternTimeout(limit)
    try:
        return _compiled(pattern, flags).search(text, timeout=limit, concurrent=True)
    except TimeoutError as exc:
        raise PatternTimeout(limit) from exc


def pattern_error_position(exc: regex_engine.error) -> str:
    """Where a pattern stumbled, as ` at position N` (the library's message is not ours to store)."""
    position = getattr(exc, "pos", None)
    return f" at position {position}" if isinstance(position, int) else ""
