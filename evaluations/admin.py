"""Read-only admin views of executions and results, for moderators following runs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from evaluations.models import BudgetAccount, Execution, SpendReservation, TestResult


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Runs and results are written by the engine only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "test_case",
        "status",
        "repeats",
        "progress_display",
        "successful_evaluations",
        "failed_evaluations",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "test_case__title", "created_by__email")
    list_select_related = ("test_case", "created_by")
    date_hierarchy = "created_at"
    exclude = ("llm_models",)
    readonly_fields = ("progress_display", "avg_score", "avg_latency_ms", "duration_seconds")

    @admin.display(description="progress")
    def progress_display(self, obj: Execution) -> str:
        return f"{obj.progress}/{obj.total_evaluations} ({obj.progress_percentage:.0f}%)"


@admin.register(TestResult)
class TestResultAdmin(ReadOnlyAdmin):
    __test__ = False
    list_display = (
        "executed_at",
        "test_case",
        "model",
        "sample",
        "status",
        "is_correct",
        "score",
        "latency_ms",
        "cost",
        "cached",
    )
    list_filter = ("status", "is_correct", "cached", "model", "test_case__category")
    search_fields = ("test_case__title", "model__name", "error_message")
    list_select_related = ("test_case", "model")
    date_hierarchy = "executed_at"


@admin.register(BudgetAccount)
class BudgetAccountAdmin(ReadOnlyAdmin):
    """Spend per user and day, and per provider and month (SPEC §11); moved by runs only."""

    list_display = ("period", "kind", "user", "provider", "spent_usd", "reserved_usd", "updated_at")
    list_filter = ("kind", "provider", "period")
    search_fields = ("user__email", "provider")
    list_select_related = ("user",)
    date_hierarchy = "period"


@admin.register(SpendReservation)
class SpendReservationAdmin(ReadOnlyAdmin):
    """Each run's reserve and actual cost by provider, and who was charged (empty: the platform)."""

    list_display = ("created_at", "user", "provider", "execution", "status", "reserved_usd", "actual_usd", "day")
    list_filter = ("status", "provider", "day", ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__email", "execution__id", "provider")
    list_select_related = ("user", "execution")
    date_hierarchy = "day"
