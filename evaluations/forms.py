"""Forms of the execution pages."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms

from catalog.models import LLMModel, TestCase
from evaluations.estimates import RunEstimate, default_models, run_estimate


class RunForm(forms.Form):
    """Which active models to run a test against; none ticked means all of them.

    Given the test, `estimate` is what running it against the default selection would cost (SPEC §11), shown
    before the button; computed once, when the page asks for it.
    """

    models = forms.ModelMultipleChoiceField(
        queryset=LLMModel.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
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

    @cached_property
    def estimate(self) -> RunEstimate | None:
        """The default selection's estimate (what a run with nothing ticked takes: every active model, or the
        sandbox models for a test not approved yet); None without a test or without such models."""
        if self.test_case is None:
            return None
        models = default_models(test_cases=[self.test_case])
        return run_estimate(test_cases=[self.test_case], models=models) if models else None
