"""Forms of the execution pages."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms

from catalog.models import LLMModel, TestCase
from evaluations.estimates import RunEstimate, run_estimate


class RunForm(forms.Form):
    """Which active models to run a test against; none ticked means all of them.

    Given the test, `estimate` is what running it against the default selection (every active model) would
    cost (SPEC §11), shown before the button; computed once, when the page asks for it.
    """

    models = forms.ModelMultipleChoiceField(
        queryset=LLMModel.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, test_case: TestCase | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.test_case = test_case
        field = self.fields["models"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = LLMModel.objects.active().order_by("display_name", "name")

    @cached_property
    def estimate(self) -> RunEstimate | None:
        """The default selection's estimate; None without a test or without active models."""
        field = self.fields["models"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        models = list(field.queryset or [])
        if self.test_case is None or not models:
            return None
        return run_estimate(test_cases=[self.test_case], models=models)
