"""Validation against a user's JSON Schema that never fetches and never runs a pattern without a time limit.

jsonschema, left to itself, resolves a `$ref` it does not know by downloading it (and `file:` URLs too),
and matches `pattern`/`patternProperties` with `re`, which has no time limit. `SafeValidator` is draft
2020-12 with:

* a `referencing.Registry` that cannot retrieve anything: a reference outside the schema is unresolvable
  (SchemaReferenceError), whatever the stored schema says;
* every pattern (`pattern`, which `propertyNames` applies to keys too; `patternProperties`, and the
  pattern matching inside `additionalProperties` and `unevaluatedProperties`) matched by
  scoring/patterns.py under EVAL_REGEX_TIMEOUT_SECONDS (SchemaPatternTimeout);
* `format: regex` checked with the `regex` package, the one the patterns run with (the catalog's
  schema_format_checker(), which submission checks a schema's own patterns with);
* within `check_time_limit()`, the whole check bounded too (SchemaCheckTimeout): a few `$ref`s that
  each apply the next one twice make the work exponential without a single pattern.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry

from catalog.validation import schema_format_checker
from evaluations.scoring.patterns import (
    PatternError,
    PatternTimeout,
    pattern_error_position,
    pattern_limit,
    pattern_search,
)

# No `retrieve`: a URI that is not the schema itself (or a draft's meta-schema, which jsonschema bundles)
# raises referencing's Unresolvable instead of being fetched.
NO_RETRIEVAL: Registry[Any] = Registry()

# The whole check of one answer may take this many times the pattern limit (10 s by default): generous
# for any real answer (milliseconds), and a bound on a schema built to do exponential work.
CHECK_BUDGET_FACTOR = 10

_deadline: ContextVar[float | None] = ContextVar("schema_check_deadline", default=None)


class SchemaCheckError(Exception):
    """The schema could not be checked safely; the subclasses say why."""


class SchemaPatternTimeout(SchemaCheckError):
    """A pattern ran out of time on `instance` (a string), or on the key `key` of `instance` (an object)."""

    def __init__(self, *, instance: Any, key: str | None, limit: float) -> None:
        super().__init__("A pattern of the schema timed out.")
        self.instance, self.key, self.limit = instance, key, limit


class SchemaCheckTimeout(SchemaCheckError):
    def __init__(self, limit: float) -> None:
        super().__init__("Checking the schema took too long.")
        self.limit = limit


class SchemaPatternInvalid(SchemaCheckError):
    def __init__(self, where: str) -> None:
        super().__init__("A pattern of the schema is not valid.")
        self.where = where  # " at position N", or ""


@contextmanager
def check_time_limit() -> Iterator[float]:
    """Bound everything validated inside (in this thread or task) to CHECK_BUDGET_FACTOR pattern limits."""
    budget = pattern_limit() * CHECK_BUDGET_FACTOR
    token = _deadline.set(time.monotonic() + budget)
    try:
        yield budget
    finally:
        _deadline.reset(token)


def _remaining() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _matches(pattern: Any, text: str, *, instance: Any, key: str | None) -> bool:
    if not isinstance(pattern, str):  # only a schema stored without validation can hold one
        raise SchemaPatternInvalid("")
    limit = pattern_limit()
    remaining = _remaining()
    if remaining is not None:
        if remaining <= 0:
            raise SchemaCheckTimeout(limit * CHECK_BUDGET_FACTOR)
        limit = min(limit, remaining)
    try:
        return pattern_search(pattern, text, timeout=limit) is not None
    except PatternTimeout as exc:
        raise SchemaPatternTimeout(instance=instance, key=key, limit=pattern_limit()) from exc
    except PatternError as exc:
        raise SchemaPatternInvalid(pattern_error_position(exc)) from exc


# -- the keywords that match patterns (jsonschema's own, with `re.search` replaced) ----------------------
def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance, instance=instance, key=None):
        yield ValidationError("does not match the pattern")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key, instance=instance, key=key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_keys(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [
        key
        for key in instance
        if key not in properties and not any(_matches(p, key, instance=instance, key=key) for p in patterns)
    ]


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError("Additional properties are not allowed")


def _is_valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> list[str]:
    """The keys of `instance` some keyword of `schema` evaluated (jsonschema's rule for
    unevaluatedProperties, with its pattern matching timed)."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[str] = []
    for keyword in ("$ref", "$dynamicRef"):
        reference = schema.get(keyword)
        if reference is not None:
            resolved = validator._resolver.lookup(reference)
            evolved = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys += _evaluated_keys(evolved, instance, resolved.contents)
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys += properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is not None:
            keys += [key for key, value in instance.items() if _is_valid(validator.descend(value, subschema))]
    for pattern in schema.get("patternProperties", {}):
        keys += [key for key in instance if _matches(pattern, key, instance=instance, key=key)]
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys += _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _is_valid(validator.descend(instance, subschema)):
                keys += _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(validator: Any, unevaluated: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = set(_evaluated_keys(validator, instance, schema))
    for key in instance:
        if key not in evaluated and not _is_valid(
            validator.descend(instance[key], unevaluated, path=key, schema_path=key)
        ):
            yield ValidationError("Unevaluated properties are not allowed")
            return


Keyword = Callable[[Any, Any, Any, Any], Any]


def _within_deadline(keyword: Keyword) -> Keyword:
    """The keyword, refusing to start once check_time_limit's deadline has passed."""

    @wraps(keyword)
    def checked(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        remaining = _remaining()
        if remaining is not None and remaining <= 0:
            raise SchemaCheckTimeout(pattern_limit() * CHECK_BUDGET_FACTOR)
        return keyword(validator, value, instance, schema)

    return checked


_KEYWORDS: dict[str, Keyword] = {
    **Draft202012Validator.VALIDATORS,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
}
SafeValidator: Any = validators.extend(
    Draft202012Validator, {name: _within_deadline(keyword) for name, keyword in _KEYWORDS.items()}
)


def safe_validator(schema: Any, *, check_formats: bool = True) -> Any:
    """A draft 2020-12 validator of `schema` that fetches nothing and times every pattern."""
    return SafeValidator(
        schema, registry=NO_RETRIEVAL, format_checker=schema_format_checker() if check_formats else None
    )
