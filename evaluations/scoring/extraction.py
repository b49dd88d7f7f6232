"""Finding JSON in a model's answer: the whole text, a fenced code block, or the first object/array."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Extracted:
    found: bool
    value: Any = None
    source: str = ""  # "whole", "fenced" or "embedded"


def extract_json(text: str) -> Extracted:
    """The first JSON value found in `text`, trying the strictest reading first."""
    stripped = text.strip()
    try:
        return Extracted(True, json.loads(stripped), "whole")
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return Extracted(True, json.loads(block.strip()), "fenced")
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(text, index)
            except ValueError:
                continue
            return Extracted(True, value, "embedded")
    return Extracted(False)
