"""Forms shared by the admin and the pages."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from catalog.models import TestCase


class ModerationDecisionForm(forms.Form):
    """Notes for an approval (optional) or the reason for a rejection (required)."""

    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False)

    def __init__(self, *args: object, require_notes: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["notes"].required = require_notes
        self.fields["notes"].label = "Reason (shown to the author)" if require_notes else "Notes (optional)"


class LenientJSONField(forms.Field):
    """A JSON value typed into a textarea; text that is not JSON is taken as a plain string.

    So an exact-match answer can be typed as `Paris` instead of `"Paris"`, while `{"a": 1}`, `42`
    and `[1, 2]` stay JSON. Empty means null.
    """

    widget = forms.Textarea(attrs={"rows": 3, "class": "mono"})

    def to_python(self, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value.strip()

    def bound_data(self, data: Any, initial: Any) -> Any:
        return _TypedText(data or "")  # what the user typed goes back into the textarea untouched

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, _TypedText) or (isinstance(value, str) and not _reads_back_differently(value)):
            return str(value)
        return json.dumps(value, indent=2, ensure_ascii=False)


class _TypedText(str):
    """Text as submitted, to be shown again as is."""


def _reads_back_differently(text: str) -> bool:
    """True when a plain string would come back as something else (e.g. "42" as a number)."""
    try:
        return json.loads(text) != text
    except ValueError:
        return False


class StrictJSONField(forms.JSONField):
    """A JSON document (output schema, evaluation config); an error in place when it does not parse."""

    default_error_messages = {"invalid": 'Enter valid JSON, e.g. {"type": "object"}.'}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "class": "mono"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return super().prepare_value(value)


class TestCaseForm(forms.Form):
    """The fields a contributor may set (catalog.services.EDITABLE_FIELDS plus tags).

    Shape only: the services run the model's full validation (schema, config per evaluation type),
    and the view puts those errors next to the fields they concern.
    """

    __test__ = False

    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    category = forms.SlugField(max_length=64, help_text="Lower-case words joined by hyphens, e.g. reasoning.")
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. arithmetic, units.")
    difficulty = forms.ChoiceField(choices=TestCase.Difficulty.choices, initial=TestCase.Difficulty.MEDIUM)
    language = forms.CharField(max_length=16, initial="en")
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    evaluation_type = forms.ChoiceField(choices=TestCase.EvaluationType.choices)
    expected_output = LenientJSONField(
        required=False, help_text="Any JSON value; text that is not JSON is taken as a string."
    )
    output_schema = StrictJSONField(required=False, help_text="Optional JSON Schema (draft 2020-12).")
    evaluation_config = StrictJSONField(
        required=False, help_text='Options of the evaluation type as a JSON object, e.g. {"case_sensitive": true}.'
    )
    timeout_seconds = forms.IntegerField(min_value=1, max_value=300, initial=60, help_text="1–300 seconds per call.")
    is_public = forms.BooleanField(required=False, initial=True, label="Public", help_text="Listed once approved.")

    @classmethod
    def initial_for(cls, test_case: TestCase) -> dict[str, Any]:
        initial = {name: getattr(test_case, name) for name in cls.base_fields if name != "tags"}
        initial["tags"] = ", ".join(tag.name for tag in test_case.tags.all())
        return initial

    def clean_tags(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["tags"].split(",") if part.strip()]

    def clean_evaluation_config(self) -> Any:
        value = self.cleaned_data["evaluation_config"]
        return {} if value is None else value

    def service_fields(self) -> dict[str, Any]:
        """Cleaned data as the services take it: tags apart, everything else by field name."""
        fields = dict(self.cleaned_data)
        return {"tags": fields.pop("tags"), **fields}
