"""FilterSets of monitoring, shared by the API and the pages."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from monitoring.models import Alert


class AlertFilter(django_filters.FilterSet):
    """`model` (id), `acknowledged` (true/false)."""

    model = django_filters.UUIDFilter(field_name="model_id")
    # A choice, not a BooleanFilter: that one reads "maybe" as no filter at all, where a 400 is the answer.
    acknowledged = django_filters.ChoiceFilter(
        choices=[("true", "Acknowledged"), ("false", "Not acknowledged")], method="filter_acknowledged"
    )

    class Meta:
        model = Alert
        fields = ["model", "acknowledged"]

    def filter_acknowledged(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(acknowledged_at__isnull=value != "true")
