"""Form helpers every app's pages share: readable blank choices, and a service's refusal shown in place."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.forms import ChoiceField, Form, ModelChoiceField, NullBooleanSelect

from openbench.exceptions import ApplicationError


def label_empty_choices(form: Form, label: str = "Any") -> None:
    """Say "Any" instead of django-filter's "---------" for the blank choice of each select."""
    for field in form.fields.values():
        if isinstance(field.widget, NullBooleanSelect):
            field.widget.choices = [("unknown", label), ("true", "Yes"), ("false", "No")]
        elif isinstance(field, ChoiceField) and not isinstance(field, ModelChoiceField):
            # django-filter adds its blank choice whenever the choices are listed; set them again without it.
            choices: list[Any] = list(field.widget.choices)
            rest = [choice for choice in choices if choice[0] != ""]
            field.empty_label = label  # type: ignore[attr-defined]
            field.choices = rest


def add_service_errors(form: Form, exc: ValidationError | ApplicationError) -> None:
    """Put a service's refusal next to the fields it names, the rest at the top of the form."""
    if isinstance(exc, ApplicationError):
        placed = False
        for field, problems in exc.details.items():
            if field in form.fields:
                for problem in problems if isinstance(problems, list) else [problems]:
                    form.add_error(field, str(problem))
                placed = True
        if not placed:
            form.add_error(None, exc.message)
        return
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
