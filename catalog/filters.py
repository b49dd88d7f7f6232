"""FilterSets for test cases and models, shared by the API and the pages."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from catalog.models import SEARCH_MAX_LENGTH, SEARCH_MAX_WORDS, LLMModel, TestCase, provider_choices


def _bounded_search(value: str) -> None:
    """A search longer than SEARCH_MAX_LENGTH or SEARCH_MAX_WORDS is refused rather than cut: a cut search
    would answer a question the caller did not ask."""
    if len(value) > SEARCH_MAX_LENGTH:
        raise ValidationError(f"Search at most {SEARCH_MAX_LENGTH} characters.", code="search_too_long")
    if len(value.split()) > SEARCH_MAX_WORDS:
        raise ValidationError(f"Search at most {SEARCH_MAX_WORDS} words.", code="search_too_many_words")


class SearchFilter(django_filters.CharFilter):
    """`search`: every word must appear in the title, description, category, prompt or a tag name."""

    field_class = forms.CharField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validators=[_bounded_search], **kwargs)

    def filter(self, qs: QuerySet[Any], value: str) -> QuerySet[Any]:
        return qs.search(value) if value else qs  # type: ignore[attr-defined]


class TestCaseFilter(django_filters.FilterSet):
    """`search`, `category`, `difficulty`, `status`, `tag`, `created_by`; archived tests only when asked for
    by status."""

    __test__ = False

    search = SearchFilter(
        label="Search",
        help_text=f"Words (at most {SEARCH_MAX_WORDS}, {SEARCH_MAX_LENGTH} characters) that must each appear in "
        "the title, description, category, prompt or a tag.",
    )

    category = django_filters.CharFilter(field_name="category", lookup_expr="iexact")
    difficulty = django_filters.ChoiceFilter(choices=TestCase.Difficulty.choices)
    status = django_filters.ChoiceFilter(choices=TestCase.Status.choices)
    tag = django_filters.CharFilter(field_name="tags__name", lookup_expr="iexact", distinct=True)
    created_by = django_filters.UUIDFilter(field_name="created_by_id")
    evaluation_type = django_filters.ChoiceFilter(choices=TestCase.EvaluationType.choices)
    language = django_filters.CharFilter(field_name="language", lookup_expr="iexact")

    class Meta:
        model = TestCase
        fields = ["search", "category", "difficulty", "status", "tag", "created_by", "evaluation_type", "language"]

    @property
    def qs(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().qs
        # The API answers a refused search with a 400 before reading this; a page shows the error and no
        # tests rather than every test.
        if self.is_bound and "search" in self.form.errors:
            return queryset.none()
        # Delete means archive: archived tests leave every list unless someone asks for them.
        if not getattr(self.form, "cleaned_data", {}).get("status"):
            queryset = queryset.exclude(status=TestCase.Status.ARCHIVED)
        return queryset


class LLMModelFilter(django_filters.FilterSet):
    """`provider`, `is_active` (default: active models only)."""

    provider = django_filters.ChoiceFilter(choices=provider_choices)
    is_active = django_filters.BooleanFilter()
    health_status = django_filters.ChoiceFilter(choices=LLMModel.Health.choices)

    class Meta:
        model = LLMModel
        fields = ["provider", "is_active", "health_status"]

    @property
    def qs(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().qs
        # A deleted model is deactivated, not removed (its results stay), so the list hides it by default.
        if getattr(self.form, "cleaned_data", {}).get("is_active") is None:
            queryset = queryset.filter(is_active=True)
        return queryset
