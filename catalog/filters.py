"""FilterSets for test cases and models, shared by the API and the pages."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from catalog.models import LLMModel, TestCase, provider_choices


class TestCaseFilter(django_filters.FilterSet):
    """`category`, `difficulty`, `status`, `tag`, `created_by`; archived tests only when asked for by status."""

    __test__ = False

    category = django_filters.CharFilter(field_name="category", lookup_expr="iexact")
    difficulty = django_filters.ChoiceFilter(choices=TestCase.Difficulty.choices)
    status = django_filters.ChoiceFilter(choices=TestCase.Status.choices)
    tag = django_filters.CharFilter(field_name="tags__name", lookup_expr="iexact", distinct=True)
    created_by = django_filters.UUIDFilter(field_name="created_by_id")
    evaluation_type = django_filters.ChoiceFilter(choices=TestCase.EvaluationType.choices)
    language = django_filters.CharFilter(field_name="language", lookup_expr="iexact")

    class Meta:
        model = TestCase
        fields = ["category", "difficulty", "status", "tag", "created_by", "evaluation_type", "language"]

    @property
    def qs(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().qs
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
