"""The suite form of the pages (SPEC §12): what the API's SuiteWriteSerializer takes, typed as text."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django import forms
from django.db import models
from django.urls import Resolver404, resolve

from catalog.api.serializers import (
    SUITE_DESCRIPTION_MAX_LENGTH,
    SUITE_MAX_TAGS,
    SUITE_MAX_TEST_IDS,
    SUITE_TAG_MAX_LENGTH,
)
from catalog.models import Suite

# Test ids are pasted one per line, comma-separated, or both.
_SEPARATORS = re.compile(r"[\s,]+")


def _max_length(name: str) -> int | None:
    """The column's length, which the API's serializer states too."""
    field = Suite._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.max_length


def _test_id(token: str) -> str | None:
    """A test id, or the id in a pasted test page URL (`https://host/tests/<id>/` or `/tests/<id>/`)."""
    try:
        return str(UUID(token))
    except ValueError:
        pass
    try:
        path = urlsplit(token).path
    except ValueError:  # e.g. an unclosed "[" in the host ("Invalid IPv6 URL")
        return None
    if not path.startswith("/"):
        return None
    try:
        match = resolve(path if path.endswith("/") else f"{path}/")
    except Resolver404:
        return None
    if match.view_name != "catalog:test-detail":
        return None
    return str(match.kwargs["pk"])


class SuiteForm(forms.Form):
    """Shape only, with the API's limits: suite_create / suite_update decide (unique name, tests the
    moderator may see, the version), and the view puts their refusals next to these fields."""

    name = forms.CharField(max_length=_max_length("name"))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=SUITE_DESCRIPTION_MAX_LENGTH
    )
    category = forms.SlugField(
        max_length=_max_length("category"),
        required=False,
        help_text="Also every approved test of this category (lower-case words joined by hyphens), e.g. reasoning.",
    )
    tags = forms.CharField(
        required=False,
        help_text=f"Also every approved test carrying all of these; comma-separated, at most {SUITE_MAX_TAGS}.",
    )
    test_ids = forms.CharField(
        label="Tests",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
        required=False,
        help_text=(
            f"Explicit tests: ids or test page addresses, one per line or comma-separated, "
            f"at most {SUITE_MAX_TEST_IDS}."
        ),
    )

    @classmethod
    def initial_for(cls, suite: Suite) -> dict[str, Any]:
        test_ids = suite.tests.order_by("created_at", "id").values_list("pk", flat=True)
        return {
            "name": suite.name,
            "description": suite.description,
            "category": suite.category,
            "tags": ", ".join(tag.name for tag in suite.tags.all()),
            "test_ids": "\n".join(str(pk) for pk in test_ids),
        }

    def clean_tags(self) -> list[str]:
        tags = [part.strip() for part in self.cleaned_data["tags"].split(",") if part.strip()]
        if len(tags) > SUITE_MAX_TAGS:
            raise forms.ValidationError(f"At most {SUITE_MAX_TAGS} tags (got {len(tags)}).")
        long = [tag for tag in tags if len(tag) > SUITE_TAG_MAX_LENGTH]
        if long:
            raise forms.ValidationError(f"A tag has at most {SUITE_TAG_MAX_LENGTH} characters: {long[0][:60]}…")
        return tags

    def clean_test_ids(self) -> list[str]:
        tokens = [token for token in _SEPARATORS.split(self.cleaned_data["test_ids"]) if token]
        ids: list[str] = []
        for token in tokens:
            test_id = _test_id(token)
            if test_id is None:
                raise forms.ValidationError(f"Not a test id or a test page address: {token[:100]}")
            ids.append(test_id)
        ids = list(dict.fromkeys(ids))
        if len(ids) > SUITE_MAX_TEST_IDS:
            raise forms.ValidationError(f"At most {SUITE_MAX_TEST_IDS} tests (got {len(ids)}).")
        return ids

    def service_fields(self) -> dict[str, Any]:
        """Cleaned data as suite_create / suite_update take it."""
        return dict(self.cleaned_data)
