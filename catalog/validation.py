"""Validation of a test's output schema and of its evaluation config, per evaluation type.

The `custom` evaluation type names a scorer that lives in a higher layer (evaluations). Its config is
checked through a hook that layer registers at start-up (`register_scorer_config_validator`), so the
catalog never imports scoring code; without a registered hook a `custom` config is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import regex as regex_engine

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker

# jsonschema (with its format checkers and referencing) is imported on first use, not with the module:
# catalog.models imports this module, so every process paid ~0.1 s of CPU at start-up for it, and a
# command such as run_batch never validates a schema.

_BOOLEAN = {"type": "boolean"}
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}

# The options each evaluation type understands; anything else is a typo worth reporting.
EVALUATION_CONFIG_SCHEMAS: dict[str, dict[str, Any]] = {
    "exact_match": {
        "type": "object",
        "properties": {"case_sensitive": _BOOLEAN, "strip": _BOOLEAN, "collapse_whitespace": _BOOLEAN},
        "additionalProperties": False,
    },
    "structured_match": {
        "type": "object",
        "properties": {
            "ignore_array_order": _BOOLEAN,
            "float_tolerance": {"type": "number", "minimum": 0},
            "ignore_extra_fields": _BOOLEAN,
            "pass_threshold": _FRACTION,
        },
        "additionalProperties": False,
    },
    "llm_judge": {
        "type": "object",
        "properties": {
            "judge_model": {"type": "string", "minLength": 1},
            "rubric": {"type": "string"},
            "pass_threshold": _FRACTION,
            # SPEC §13: a normalised exact/contains match decides before the judge (evaluations/scoring/cascade.py).
            "cascade": _BOOLEAN,
        },
        "additionalProperties": False,
    },
    "custom": {
        "type": "object",
        "properties": {"scorer": {"type": "string", "minLength": 1}},
        "required": ["scorer"],
    },
}


# (scorer name, the config without `scorer`) -> why the named scorer refuses it; [] when it accepts.
ScorerConfigValidator = Callable[[str, dict[str, Any]], list[str]]

_scorer_config_validator: ScorerConfigValidator | None = None


def register_scorer_config_validator(validator: ScorerConfigValidator | None) -> None:
    """Install the check of `custom` configs (evaluations does, in its AppConfig.ready); None removes it."""
    global _scorer_config_validator
    _scorer_config_validator = validator


def json_schema_errors(schema: dict[str, Any], instance: Any, *, check_formats: bool = False) -> list[str]:
    """Why `instance` does not satisfy the JSON Schema `schema`, one message per problem, path first."""
    from jsonschema import Draft202012Validator
    from referencing import Registry

    # `format: regex` is checked with the `regex` package, as scoring uses it; the registry retrieves nothing.
    checker = schema_format_checker() if check_formats else None
    return _messages(Draft202012Validator(schema, format_checker=checker, registry=Registry()), instance)


def _messages(validator: Draft202012Validator, instance: Any) -> list[str]:
    messages = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


def output_schema_errors(schema: Any) -> list[str]:
    """Why `schema` is not a valid JSON Schema (draft 2020-12); [] when it is, or when absent."""
    if schema is None:
        return []
    if not isinstance(schema, dict | bool):
        return ["A JSON Schema must be an object or a boolean."]
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema, format_checker=schema_format_checker())
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return [f"Not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")]
    return schema_safety_errors(schema)


def _is_regex(instance: object) -> bool:
    if isinstance(instance, str):
        regex_engine.compile(instance)
    return True


@functools.cache
def schema_format_checker() -> FormatChecker:
    """Draft 2020-12's formats, with `regex` meaning what the `regex` package compiles: scoring matches a
    schema's patterns with it (under a time limit), so `\\p{L}` is fine and a pattern it refuses is not."""
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("regex", raises=(regex_engine.error, RecursionError))(_is_regex)
    return checker


_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
_MAX_SAFETY_ERRORS = 10


def schema_safety_errors(schema: Any) -> list[str]:
    """Why a user's JSON Schema may not be stored (SPEC §10, "no fetch from user content"); [] when it may.

    A reference must stay inside the schema (`#...`): a URL or a file would be fetched by a careless
    validator. A `$id` may not name an absolute URI, which would make the schema's own `#...` references
    relative to a remote document. Every `pattern` and `patternProperties` key must compile with the
    `regex` package, the one scoring matches them with (under a time limit): check_schema checks those
    of known keywords, this walk every object in the schema, keywords or not, since a `$ref` can point
    anywhere in it.
    """
    errors: list[str] = []
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack and len(errors) < _MAX_SAFETY_ERRORS:
        pointer, node = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{pointer}/{index}", child) for index, child in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        for keyword in _REFERENCE_KEYWORDS:
            reference = node.get(keyword)
            if isinstance(reference, str) and not reference.startswith("#"):
                errors.append(
                    f"{keyword} at {pointer or '/'} must start with '#': only references inside the schema "
                    "are allowed (nothing is fetched)."
                )
        identifier = node.get("$id")
        if isinstance(identifier, str) and _names_another_document(identifier):
            errors.append(f"$id at {pointer or '/'} must not be an absolute URI; remove it.")
        if isinstance(node.get("pattern"), str):
            errors.extend(_pattern_errors(node["pattern"], f"{pointer}/pattern"))
        if isinstance(node.get("patternProperties"), dict):
            for pattern in node["patternProperties"]:
                errors.extend(_pattern_errors(pattern, f"{pointer}/patternProperties"))
        stack.extend(
            (f"{pointer}/{_escape(key)}", child)
            for key, child in reversed(node.items())
            if isinstance(child, dict | list)
        )
    return errors[:_MAX_SAFETY_ERRORS]


def _names_another_document(identifier: str) -> bool:
    try:
        parts = urlsplit(identifier)
    except ValueError:  # e.g. an unclosed "[" in the host: not a local name either
        return True
    return bool(parts.scheme or parts.netloc or identifier.startswith("//"))


def _pattern_errors(pattern: str, pointer: str) -> list[str]:
    try:
        regex_engine.compile(pattern)
    except regex_engine.error as exc:
        # Where it stumbled; the library's own message is not ours to show.
        position = getattr(exc, "pos", None)
        where = f" (at position {position})" if isinstance(position, int) else ""
        return [f"The pattern at {pointer} is not a valid regular expression{where}."]
    except RecursionError:
        return [f"The pattern at {pointer} is nested too deeply."]
    return []


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def cascade_errors(evaluation_type: str, config: Any, expected_output: Any) -> list[str]:
    """Why a test may not ask for the cascade: it needs an expected output with something to match."""
    if evaluation_type != "llm_judge" or not isinstance(config, dict) or config.get("cascade") is not True:
        return []
    if expected_output is None or (isinstance(expected_output, str) and not expected_output.strip()):
        return ["cascade: needs an expected output to match the answer against; set one or drop cascade."]
    return []


def evaluation_config_errors(evaluation_type: str, config: Any) -> list[str]:
    """Why `config` does not fit `evaluation_type`; [] when it does."""
    if not isinstance(config, dict):
        return ["The evaluation config must be a JSON object."]
    schema = EVALUATION_CONFIG_SCHEMAS.get(evaluation_type)
    if schema is None:
        return [f"Unknown evaluation type {evaluation_type!r}."]
    errors = json_schema_errors(schema, config)
    if errors or evaluation_type != "custom":
        return errors
    if _scorer_config_validator is None:
        # Fail closed: a config nobody checked could name a scorer that does not exist.
        return ["Custom scorers are unavailable: no scorer registry is installed to check this config."]
    options = {key: value for key, value in config.items() if key != "scorer"}
    return _scorer_config_validator(config["scorer"], options)
