"""Validation of a test's output schema and of its evaluation config, per evaluation type."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

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
        },
        "additionalProperties": False,
    },
    "custom": {
        "type": "object",
        "properties": {"scorer": {"type": "string", "minLength": 1}},
        "required": ["scorer"],
    },
}


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
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return [f"Not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")]
    return []


def evaluation_config_errors(evaluation_type: str, config: Any) -> list[str]:
    """Why `config` does not fit `evaluation_type`; [] when it does."""
    if not isinstance(config, dict):
        return ["The evaluation config must be a JSON object."]
    schema = EVALUATION_CONFIG_SCHEMAS.get(evaluation_type)
    if schema is None:
        return [f"Unknown evaluation type {evaluation_type!r}."]
    errors = _messages(Draft202012Validator(schema), config)
    if errors or evaluation_type != "custom":
        return errors

    from evaluations.scoring.registry import custom_scorer_names, get_custom_scorer

    scorer = get_custom_scorer(config["scorer"])
    if scorer is None:
        return [f"Unknown scorer {config['scorer']!r}; registered scorers: {', '.join(custom_scorer_names())}."]
    options = {key: value for key, value in config.items() if key != "scorer"}
    return _messages(
        Draft202012Validator(scorer.config_schema, format_checker=Draft202012Validator.FORMAT_CHECKER), options
    )
