"""Schedules, suite runs and drift alerts for moderators (SPEC §12)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from monitoring.models import Alert, Schedule, SuiteRun
from monitoring.services import alert_acknowledge, schedule_create, schedule_update


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin[Schedule]):
    """Edits go through the services, so a new timetable gets its next tick and a bad cron is refused."""

    list_display = ("suite", "cron", "repeats", "is_active", "next_run_at", "last_run_at")
    list_filter = ("is_active",)
    search_fields = ("suite__name", "cron")
    list_select_related = ("suite",)
    filter_horizontal = ("llm_models",)
    readonly_fields = ("next_run_at", "last_run_at", "created_by", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in ("cron", "repeats", "is_active")}
        if change:
            schedule_update(schedule=obj, suite=form.cleaned_data["suite"], **fields)
        else:
            assert isinstance(request.user, User)
            saved = schedule_create(created_by=request.user, suite=form.cleaned_data["suite"], **fields)
            obj.pk, obj._state.adding = saved.pk, False
            obj.refresh_from_db()


@admin.register(SuiteRun)
class SuiteRunAdmin(admin.ModelAdmin[SuiteRun]):
    """What each run resolved to and started; written by the services only."""

    list_display = ("suite", "suite_version", "schedule", "tick_at", "started_by", "repeats", "error", "created_at")
    list_filter = (("schedule", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("suite", "schedule", "started_by")
    search_fields = ("suite__name",)
    date_hierarchy = "created_at"
    raw_id_fields = ("executions",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    """Drift alerts; moderators acknowledge them (the action), nobody edits what they say."""

    list_display = (
        "created_at",
        "kind",
        "model",
        "previous_score",
        "current_score",
        "delta",
        "p_value",
        "acknowledged_at",
    )
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter), ("model", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("model",)
    date_hierarchy = "created_at"
    actions = ["acknowledge"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        assert isinstance(request.user, User)
        for alert in queryset:
            alert_acknowledge(alert=alert, user=request.user)
        messages.success(request, f"{queryset.count()} alert(s) acknowledged.")
