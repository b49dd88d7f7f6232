from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def custom_scorer_config_errors(name: str, options: dict[str, Any]) -> list[str]:
    """The catalog's check of a `custom` config: the scorer must be registered and accept the options."""
    from catalog.validation import json_schema_errors
    from evaluations.scoring.registry import custom_scorer_names, get_custom_scorer

    scorer = get_custom_scorer(name)
    if scorer is None:
        return [f"Unknown scorer {name!r}; registered scorers: {', '.join(custom_scorer_names())}."]
    return json_schema_errors(scorer.config_schema, options, check_formats=True)


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from catalog.validation import register_scorer_config_validator

        # The catalog validates a test's `custom` config through this hook, never by importing scoring.
        register_scorer_config_validator(custom_scorer_config_errors)
        # Project scorers live in `<app>/scorers.py` and register themselves with @register_scorer.
        autodiscover_modules("scorers")
