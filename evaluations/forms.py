"""Forms of the execution pages."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms

from catalog.models import LLMModel, TestCase
from evaluations.estimate_requests import default_models
from evaluations.estimates import RunEstimate, run_estimate
from evaluations.models import MAX_REPEATS, MIN_REPEATS


class RunForm(forms.Form):
    """Which active models to run a test against (none ticked means all of them), and how many samples of
    each (SPEC §12 repeats; empty means one).

    Given the test, `estimate` is what running it against the default selection would cost (SPEC §11), shown
    before the button; computed once, when the page asks for it.
    """

    models = forms.ModelMultipleChoiceField(
        queryset=LLMModel.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    repeats = forms.IntegerField(
        label="Samples per model",
        min_value=MIN_REPEATS,
        max_value=MAX_REPEATS,
        initial=1,
        required=False,
        help_text=f"Each model answers this many times ({MIN_REPEATS}–{MAX_REPEATS}).",
    )

    def __init__(self, *args: Any, test_case: TestCase | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.test_case = test_case
        field = self.fields["models"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        models = LLMModel.objects.active()
        if test_case is not None and test_case.status != TestCase.Status.APPROVED:
            models = models.sandbox()  # the only models a test not approved yet may run on (SPEC §11)
        field.queryset = models.order_by("display_name", "name")

    def clean_repeats(self) -> int:
        repeats = self.cleaned_data.get("repeats")
        return MIN_REPEATS if repeats is None else int(repeats)

    def error_text(self) -> str:
        """The form's errors as one message, each led by its field's label, for the page's flash message."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else None
            prefix = f"{label or name.capitalize()}: " if name != "__all__" else ""
            parts += [f"{prefix}{error}" for error in errors]
        return "; ".join(parts)

    @cached_property
    def estimate(self) -> RunEstimate | None:
        """The default selection's estimate (what a run with nothing ticked takes: every active model, or the
        sandbox models for a test not approved yet); None without a test or without such models."""
        if self.test_case is None:
            return None
        models = default_models(test_cases=[self.test_case])
        return run_estimate(test_cases=[self.test_case], models=models) if models else None
