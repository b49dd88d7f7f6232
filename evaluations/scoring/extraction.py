"""Finding JSON in a model's answer (the whole text, a fenced code block, or the first object/array),
and comparing JSON values the way JSON means them. The one place for both."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

# ```json ... ``` or ``` ... ```; any info string (json, JSON, jsonc, javascript) is tolerated.
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Extracted:
    """The JSON found in an answer; `source` says where: "whole", "fenced" or "embedded"."""

    found: bool
    value: Any = None
    source: str = ""


def _loads(text: str) -> Any:
    # Python's json accepts NaN/Infinity, which are not JSON; a model answer with them is not valid JSON.
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def extract_json(text: str) -> Extracted:
    """The first JSON value found in `text`, trying the strictest reading first."""
    if not isinstance(text, str):
        return Extracted(False)
    stripped = text.strip().lstrip("\ufeff")
    if stripped:
        try:
            return Extracted(True, _loads(stripped), "whole")
        except ValueError:
            pass
    for block in _FENCE.findall(text):
        try:
            return Extracted(True, _loads(block.strip()), "fenced")
        except ValueError:
            continue
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    for index, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(text, index)
            except ValueError:
                continue
            return Extracted(True, value, "embedded")
    return Extracted(False)


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
