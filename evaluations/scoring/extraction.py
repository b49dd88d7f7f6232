"""Comparing JSON values the way JSON means them. Finding JSON in an answer (`extract_json`) lives in
providers/json_answers.py, which the adapters share with the scorers."""

from __future__ import annotations

import math
from typing import Any


def is_number(value: Any) -> bool:
    """A JSON number: int or float but not bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any, *, float_tolerance: float = 0.0) -> bool:
    """Equality as JSON means it: 1 == 1.0, but true != 1 and "1" != 1; dict key order never matters."""
    if is_number(a) and is_number(b):
        if float_tolerance:
            return math.isclose(a, b, rel_tol=0.0, abs_tol=float_tolerance)
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k], float_tolerance=float_tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            json_equal(x, y, float_tolerance=float_tolerance) for x, y in zip(a, b, strict=False)
        )
    return type(a) is type(b) and a == b
