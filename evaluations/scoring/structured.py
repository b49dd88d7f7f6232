"""`structured_match`: JSON extracted from the answer, validated by the test's schema, compared leaf by leaf."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from jsonschema import ValidationError
from referencing.exceptions import Unresolvable

from evaluations.scoring.base import ScoreOutcome, Scorer, ScoringError, ScoringTarget
from evaluations.scoring.extraction import is_number, json_equal
from evaluations.scoring.safe_schema import (
    SchemaCheckTimeout,
    SchemaPatternInvalid,
    SchemaPatternTimeout,
    check_time_limit,
    safe_validator,
)
from providers.json_answers import extract_json

DEFAULT_PASS_THRESHOLD = 0.95
_MAX_REPORTED = 100  # enough to explain a result without storing megabytes of mismatches
_MAX_PATH = 80  # of a path quoted in a reason (SPEC §10 caps reasons at 300 characters)


@dataclass
class Comparison:
    """Leaves of the expected value that matched, out of how many, and where they differed."""

    matched: int = 0
    total: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def leaf(self, path: str, ok: bool, expected: Any = None, actual: Any = None, reason: str = "") -> None:
        self.total += 1
        if ok:
            self.matched += 1
        else:
            self.mismatches.append({"path": path or "$", "reason": reason, "expected": expected, "actual": actual})

    def absorb(self, other: Comparison) -> None:
        self.matched += other.matched
        self.total += other.total
        self.mismatches.extend(other.mismatches)

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 1.0


@dataclass(frozen=True)
class CompareOptions:
    ignore_array_order: bool = False
    float_tolerance: float = 0.0
    ignore_extra_fields: bool = False


def _leaf_count(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaf_count(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(_leaf_count(v) for v in value) or 1
    return 1


def compare(expected: Any, actual: Any, options: CompareOptions, path: str = "$") -> Comparison:
    """Compare `actual` to `expected`, counting every leaf of `expected` (and extra fields unless ignored)."""
    result = Comparison()
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            result.total += _leaf_count(expected)
            result.mismatches.append(
                {"path": path, "reason": "type", "expected": "object", "actual": _type_name(actual)}
            )
            return result
        if not expected:
            result.leaf(path, not actual or options.ignore_extra_fields, {}, actual, "extra fields")
            return result
        for key, value in expected.items():
            child = f"{path}.{key}"
            if key not in actual:
                result.total += _leaf_count(value)
                result.mismatches.append({"path": child, "reason": "missing", "expected": value, "actual": None})
            else:
                result.absorb(compare(value, actual[key], options, child))
        if not options.ignore_extra_fields:
            for key in actual.keys() - expected.keys():
                result.leaf(f"{path}.{key}", False, None, actual[key], "unexpected field")
        return result
    if isinstance(expected, list):
        if not isinstance(actual, list):
            result.total += _leaf_count(expected)
            result.mismatches.append(
                {"path": path, "reason": "type", "expected": "array", "actual": _type_name(actual)}
            )
            return result
        if not expected:
            result.leaf(path, not actual, [], actual, "extra items")
            return result
        if options.ignore_array_order:
            result.absorb(_compare_unordered(expected, actual, options, path))
        else:
            for index, value in enumerate(expected):
                child = f"{path}[{index}]"
                if index < len(actual):
                    result.absorb(compare(value, actual[index], options, child))
                else:
                    result.total += _leaf_count(value)
                    result.mismatches.append({"path": child, "reason": "missing", "expected": value, "actual": None})
            for index in range(len(expected), len(actual)):
                result.leaf(f"{path}[{index}]", False, None, actual[index], "unexpected item")
        return result
    if is_number(expected) and is_number(actual):
        ok = json_equal(expected, actual, float_tolerance=options.float_tolerance)
        result.leaf(path, ok, expected, actual, "" if ok else "value")
        return result
    ok = json_equal(expected, actual)
    reason = "value" if type(expected) is type(actual) else "type"
    result.leaf(path, ok, expected, actual, "" if ok else reason)
    return result


def _compare_unordered(expected: list[Any], actual: list[Any], options: CompareOptions, path: str) -> Comparison:
    """Pair each expected item with its best unused actual item (greedy, best matches first)."""
    candidates = []
    for i, want in enumerate(expected):
        for j, got in enumerate(actual):
            candidates.append((compare(want, got, options, f"{path}[{i}]"), i, j))
    candidates.sort(key=lambda c: (-c[0].fraction, c[1], c[2]))
    used_expected: set[int] = set()
    used_actual: set[int] = set()
    result = Comparison()
    for comparison, i, j in candidates:
        if i in used_expected or j in used_actual:
            continue
        used_expected.add(i)
        used_actual.add(j)
        result.absorb(comparison)
    for i, want in enumerate(expected):
        if i not in used_expected:
            result.total += _leaf_count(want)
            result.mismatches.append({"path": f"{path}[{i}]", "reason": "missing", "expected": want, "actual": None})
    for j, got in enumerate(actual):
        if j not in used_actual:
            result.leaf(f"{path}[?]", False, None, got, "unexpected item")
    return result


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    # SafeValidator: nothing fetched (a registry without retrieval), every pattern under a time limit.
    return safe_validator(json.loads(schema_json))


def schema_errors(schema: Any, instance: Any) -> list[dict[str, str]]:
    """Every way `instance` violates `schema` (draft 2020-12), as {path, message}.

    Raises ScoringError, with a reason of ours, when the schema cannot be checked safely: a pattern
    timed out, the check ran out of time, a pattern does not compile, or a `$ref` leads outside the
    schema (such a schema is refused at submission; one stored before that rule is never fetched).
    """
    if schema is None:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        with check_time_limit() as budget:
            found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    except SchemaPatternTimeout as exc:
        where = _locate(instance, exc.instance, exc.key)
        where = where if len(where) <= _MAX_PATH else where[: _MAX_PATH - 1] + "…"  # keys are the model's text
        raise ScoringError(
            f"The output schema's pattern timed out at {where} (longer than {exc.limit:g} s; catastrophic "
            "backtracking?); simplify it, e.g. avoid nested quantifiers such as (a+)+.",
            details={"path": where},
        ) from exc
    except SchemaCheckTimeout as exc:
        raise ScoringError(
            f"Checking the answer against the output schema took longer than {budget:g} s; simplify the schema.",
        ) from exc
    except SchemaPatternInvalid as exc:
        raise ScoringError(f"The output schema has a pattern that is not valid{exc.where}.") from exc
    except Unresolvable as exc:
        raise ScoringError(
            "The output schema has a $ref that does not lead inside it; only references inside the schema "
            "(#...) are followed, nothing is fetched."
        ) from exc
    errors = []
    for error in found:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append({"path": "$" + where, "message": _schema_reason(error)})
    return errors


def _locate(document: Any, target: Any, key: str | None) -> str:
    """The path in `document` of the object `target` (then of its `key`), or of the string `target` as a
    value or a key; "$" when it is not found (it always is: the validator hands us the document's own objects)."""
    stack: list[tuple[str, Any]] = [("$", document)]
    key_hit: str | None = None
    while stack:
        path, value = stack.pop()
        if value is target:
            return f"{path}.{key}" if key is not None else path
        if isinstance(value, dict):
            for name, child in reversed(value.items()):
                if key is None and key_hit is None and name is target:
                    key_hit = f"{path}.{name}"  # a key checked by propertyNames
                stack.append((f"{path}.{name}", child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(value))))
    return key_hit or "$"


_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _schema_reason(error: ValidationError) -> str:
    """What a schema violation is, in our words: jsonschema's own message quotes the instance and the
    schema it reached, and SPEC §10 keeps error texts to reasons we composed."""
    if error.validator is None:  # the schema here is `false`
        return "not allowed by the schema (false)"
    keyword, value = str(error.validator), error.validator_value
    if keyword == "required" and isinstance(value, list) and isinstance(error.instance, dict):
        missing = [name for name in value if isinstance(name, str) and name not in error.instance]
        if missing:
            return f"{missing[0][:60]!r} is a required property"
    if keyword == "type":
        wanted = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if wanted and all(isinstance(name, str) and name in _JSON_TYPES for name in wanted):
            return f"expected {' or '.join(wanted)}, got {_type_name(error.instance)}"
    if keyword in ("enum", "const"):
        return "not one of the allowed values" if keyword == "enum" else "not the required constant"
    if is_number(value):
        return f"fails {keyword} {value}"
    return f"fails {keyword}"


class StructuredMatchScorer(Scorer):
    """Score = fraction of matching leaves; passes at `pass_threshold` (default 0.95) with no schema error."""

    evaluation_type: ClassVar[str] = "structured_match"

    async def ascore(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        # Always beside the event loop: a schema's patterns may run up to their time limit and the
        # leaf comparison of a long answer is quadratic with ignore_array_order; the loop's other calls go on.
        return await asyncio.to_thread(self.score, answer, target)

    def score(self, answer: str, target: ScoringTarget) -> ScoreOutcome:
        config = target.evaluation_config
        options = CompareOptions(
            ignore_array_order=bool(config.get("ignore_array_order", False)),
            float_tolerance=float(config.get("float_tolerance", 0.0)),
            ignore_extra_fields=bool(config.get("ignore_extra_fields", False)),
        )
        threshold = float(config.get("pass_threshold", DEFAULT_PASS_THRESHOLD))
        extracted = extract_json(answer)
        if not extracted.found:
            return ScoreOutcome(
                score=0.0,
                is_correct=False,
                details={"error": "The answer contains no JSON value.", "pass_threshold": threshold},
            )
        violations = schema_errors(target.output_schema, extracted.value)
        comparison = compare(target.expected_output, extracted.value, options)
        score = comparison.fraction
        return ScoreOutcome(
            score=score,
            is_correct=score >= threshold and not violations,
            details={
                "source": extracted.source,
                "matched_leaves": comparison.matched,
                "total_leaves": comparison.total,
                "pass_threshold": threshold,
                "schema_valid": not violations,
                "schema_errors": violations[:_MAX_REPORTED],
                "mismatches": comparison.mismatches[:_MAX_REPORTED],
                "options": {
                    "ignore_array_order": options.ignore_array_order,
                    "float_tolerance": options.float_tolerance,
                    "ignore_extra_fields": options.ignore_extra_fields,
                },
            },
            parsed_output=extracted.value,
        )
