"""Built-in `custom` scorers. Projects add their own with @register_scorer in any imported module."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Any

import regex as regex_engine
from rapidfuzz.distance import Levenshtein

from evaluations.scoring.base import ScoreOutcome, ScoringError
from evaluations.scoring.extraction import is_number, json_equal
from evaluations.scoring.patterns import PatternError, PatternTimeout, pattern_error_position, pattern_search
from evaluations.scoring.registry import register_scorer
from providers.json_answers import extract_json

_THRESHOLD = {"threshold": {"type": "number", "minimum": 0, "maximum": 1}}


def _as_text(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return unicodedata.normalize("NFC", text)


@register_scorer(
    "contains",
    config_schema={
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "case_sensitive": {"type": "boolean"},
            "mode": {"enum": ["all", "any"]},
        },
        "additionalProperties": False,
    },
)
def contains(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Passes when the answer contains the expected text (or all/any of `values`)."""
    needles = [_as_text(value) for value in config.get("values") or [expected]]
    if not all(needles):
        return ScoreOutcome(score=0.0, is_correct=False, details={"error": "Nothing to look for: the text is empty."})
    case_sensitive = config.get("case_sensitive", False)
    answer = _as_text(answer)
    haystack = answer if case_sensitive else answer.casefold()
    found = [needle for needle in needles if (needle if case_sensitive else needle.casefold()) in haystack]
    score = len(found) / len(needles)
    passed = bool(found) if config.get("mode", "all") == "any" else len(found) == len(needles)
    return ScoreOutcome(score=1.0 if passed else score, is_correct=passed, details={"found": found, "wanted": needles})


@register_scorer(
    "regex",
    config_schema={
        "type": "object",
        "properties": {"pattern": {"type": "string", "format": "regex"}, "ignore_case": {"type": "boolean"}},
        "required": ["pattern"],
        "additionalProperties": False,
    },
    blocking=True,
)
def regex(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Passes when the pattern matches somewhere in the answer.

    Matched with the `regex` package, which takes a time limit: a pattern with catastrophic
    backtracking (`(a|aa)+$` on a long answer) fails this result with the reason instead of running
    for minutes. It matches in a thread with the GIL released (`blocking`; see scoring/patterns.py), so the
    worker's other calls go on meanwhile.
    """
    flags = regex_engine.IGNORECASE if config.get("ignore_case") else 0
    try:
        match = pattern_search(config["pattern"], answer, flags=flags)
    except PatternTimeout as exc:
        raise ScoringError(
            f"The pattern took longer than {exc.limit:g} s on this answer (catastrophic backtracking?); "
            "simplify it, e.g. avoid nested quantifiers such as (a+)+.",
            details={"pattern": config["pattern"], "answer_length": len(answer)},
        ) from exc
    except PatternError as exc:
        # The library's message is not stored (SPEC §10: reasons are ours); where it stumbled is enough.
        raise ScoringError(
            f"The pattern is not valid{pattern_error_position(exc)}.", details={"pattern": config["pattern"]}
        ) from exc
    return ScoreOutcome(
        score=1.0 if match else 0.0,
        is_correct=bool(match),
        details={"pattern": config["pattern"], "match": match.group(0) if match else None},
    )


# 1,234.5 has a thousands separator (groups of three); "1,2" is two numbers, not 12.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def _as_number(value: Any) -> float | None:
    if is_number(value):
        number = float(value)
    elif isinstance(value, str):
        found = _numbers_in(value.strip())
        if len(found) != 1:
            return None
        number = found[0]
    else:
        return None
    return number if math.isfinite(number) else None


def _numbers_in(text: str) -> list[float]:
    values = []
    for token in _NUMBER.findall(text):
        try:
            values.append(float(token.replace(",", "")))
        except ValueError:
            continue
    return values


@register_scorer(
    "numeric",
    config_schema={
        "type": "object",
        "properties": {
            "abs_tolerance": {"type": "number", "minimum": 0},
            "rel_tolerance": {"type": "number", "minimum": 0},
            "take": {"enum": ["last", "first"]},
        },
        "additionalProperties": False,
    },
)
def numeric(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Passes when the answer's number (last one by default) is within tolerance of the expected number."""
    target = _as_number(expected)
    if target is None:
        return ScoreOutcome(score=0.0, is_correct=False, details={"error": "The expected output is not a number."})
    numbers = _numbers_in(answer)
    if not numbers:
        return ScoreOutcome(score=0.0, is_correct=False, details={"error": "No number found in the answer."})
    value = numbers[0] if config.get("take") == "first" else numbers[-1]
    passed = math.isclose(
        value, target, rel_tol=config.get("rel_tolerance", 0.0), abs_tol=config.get("abs_tolerance", 1e-9)
    )
    return ScoreOutcome(
        score=1.0 if passed else 0.0,
        is_correct=passed,
        details={"value": value, "expected": target},
        parsed_output=value,
    )


def _resolve_path(document: Any, path: str) -> tuple[bool, Any]:
    """Follow a `$.a.b[0]` / `a.b.0` path; (found, value)."""
    current = document
    parts = [part for part in re.split(r"\.|\[(\d+)\]", path.removeprefix("$")) if part]
    for part in parts:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


@register_scorer(
    "json_path",
    config_schema={
        "type": "object",
        "properties": {"path": {"type": "string", "minLength": 1}, "value": {}},
        "required": ["path"],
        "additionalProperties": False,
    },
)
def json_path(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Passes when the JSON answer has `value` (or the expected output) at `path`."""
    extracted = extract_json(answer)
    if not extracted.found:
        return ScoreOutcome(score=0.0, is_correct=False, details={"error": "No JSON found in the answer."})
    wanted = config.get("value", expected)
    found, value = _resolve_path(extracted.value, config["path"])
    passed = found and json_equal(value, wanted)
    return ScoreOutcome(
        score=1.0 if passed else 0.0,
        is_correct=passed,
        details={"path": config["path"], "found": found, "value": value, "expected": wanted},
        parsed_output=extracted.value,
    )


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", _as_text(text).casefold())


@register_scorer("f1", config_schema={"type": "object", "properties": _THRESHOLD, "additionalProperties": False})
def f1(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Token-overlap F1 between answer and expected text (SQuAD style)."""
    predicted, reference = _tokens(answer), _tokens(_as_text(expected))
    common = sum((Counter(predicted) & Counter(reference)).values())
    if not predicted or not reference:
        score = 1.0 if predicted == reference else 0.0
    elif common == 0:
        score = 0.0
    else:
        precision, recall = common / len(predicted), common / len(reference)
        score = 2 * precision * recall / (precision + recall)
    threshold = config.get("threshold", 0.5)
    return ScoreOutcome(score=score, is_correct=score >= threshold, details={"f1": score, "threshold": threshold})


@register_scorer(
    "levenshtein", config_schema={"type": "object", "properties": _THRESHOLD, "additionalProperties": False}
)
def levenshtein(answer: str, expected: Any, config: dict[str, Any]) -> ScoreOutcome:
    """Similarity 1 - distance / longer length, on stripped text."""
    a, b = _as_text(answer).strip(), _as_text(expected).strip()
    longest = max(len(a), len(b))
    distance = Levenshtein.distance(a, b)  # rapidfuzz: C++, bit-parallel; a Python loop is O(n·m)
    score = 1.0 if longest == 0 else 1 - distance / longest
    threshold = config.get("threshold", 0.8)
    return ScoreOutcome(
        score=score, is_correct=score >= threshold, details={"distance": distance, "threshold": threshold}
    )
