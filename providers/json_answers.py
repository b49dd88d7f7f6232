"""Finding the JSON value in a model's answer: the whole text, a fenced code block, or the first
object/array in it. Adapters use it to parse answers they asked to be JSON; the scorers use it to read
answers. Comparing JSON values is scoring's business (evaluations/scoring/extraction.py)."""

from __future__ import annotations

import json
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


def parse_structured(text: str) -> Any:
    """The JSON value in an answer: strict first, then leniently (fenced block, first object/array)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    extracted = extract_json(text)
    return extracted.value if extracted.found else None
