"""Forms of the execution pages."""

from __future__ import annotations

from typing import Any

from django import forms

from catalog.models import LLMModel


class RunForm(forms.Form):
    """Which active models to run a test against; none ticked means all of them."""

    models = forms.ModelMultipleChoiceField(
        queryset=LLMModel.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["models"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = LLMModel.objects.active().order_by("display_name", "name")
