"""Forms shared by the admin and the pages."""

from __future__ import annotations

from django import forms


class ModerationDecisionForm(forms.Form):
    """Notes for an approval (optional) or the reason for a rejection (required)."""

    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False)

    def __init__(self, *args: object, require_notes: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["notes"].required = require_notes
        self.fields["notes"].label = "Reason (shown to the author)" if require_notes else "Notes (optional)"
