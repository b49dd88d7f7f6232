"""Analytics pages: the leaderboard, the compare page and a model's performance page.

Every number comes from `leaderboard.selectors` (the same functions the API calls) through the
analytics cache; these views only parse the filters, shape rows for the tables and chart geometry.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from catalog.models import LLMModel, TestCase, provider_choices
from evaluations.models import TestResult
from leaderboard import selectors
from leaderboard.api.serializers import MAX_COMPARED
from leaderboard.caching import analytics_cached
from leaderboard.charts import interval_chart, line_chart
from monitoring.views import model_drift_context

FLAKY_LISTED = 20  # flaky tests named on a model's page; the API lists them all

# "All time" first: it is the default, and a select shows its first option when nothing is chosen.
TIMEFRAME_CHOICES = sorted(
    ((key, "All time" if days is None else f"Last {days} days") for key, days in selectors.TIMEFRAME_DAYS.items()),
    key=lambda choice: choice[0] != "all",
)


def _categories() -> list[tuple[str, str]]:
    names = TestCase.objects.publicly_listed().order_by("category").values_list("category", flat=True).distinct()
    return [("", "All categories"), *((name, name) for name in names)]


class ScopeForm(forms.Form):
    """The analytics filters every page shares; an unknown value is an error shown next to its field."""

    category = forms.ChoiceField(required=False)
    timeframe = forms.ChoiceField(choices=TIMEFRAME_CHOICES, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = _categories()  # type: ignore[attr-defined]

    def scope(self, **extra: str) -> selectors.Scope:
        data = self.cleaned_data if self.is_valid() else {}
        return selectors.Scope(category=data.get("category") or "", timeframe=data.get("timeframe") or "all", **extra)


class LeaderboardForm(ScopeForm):
    difficulty = forms.ChoiceField(choices=[("", "Any difficulty"), *TestCase.Difficulty.choices], required=False)
    provider = forms.ChoiceField(choices=lambda: [("", "Any provider"), *provider_choices()], required=False)
    min_tests = forms.IntegerField(min_value=0, max_value=100_000, required=False, label="Min. tests")

    def scope(self, **extra: str) -> selectors.Scope:
        data = self.cleaned_data if self.is_valid() else {}
        return super().scope(difficulty=data.get("difficulty") or "", provider=data.get("provider") or "")

    def min_tests_value(self) -> int:
        return (self.cleaned_data.get("min_tests") or 0) if self.is_valid() else 0


class ModelsField(forms.ModelMultipleChoiceField):
    """Models chosen with repeated `models=` (the checkboxes) or comma-separated, as the API takes them."""

    def clean(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return super().clean(value)


class CompareForm(ScopeForm):
    models = ModelsField(
        queryset=LLMModel.objects.order_by("-is_active", "display_name", "name"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": f"Choose between 2 and {MAX_COMPARED} models to compare."},
    )
    difficulty = forms.ChoiceField(choices=[("", "Any difficulty"), *TestCase.Difficulty.choices], required=False)

    def clean_models(self) -> list[LLMModel]:
        chosen = list(self.cleaned_data["models"])
        if not 2 <= len(chosen) <= MAX_COMPARED:
            raise forms.ValidationError(
                f"Choose between 2 and {MAX_COMPARED} models to compare; you chose {len(chosen)}."
            )
        return chosen

    def scope(self, **extra: str) -> selectors.Scope:
        data = self.cleaned_data if self.is_valid() else {}
        return super().scope(difficulty=data.get("difficulty") or "")


@require_http_methods(["GET"])
def leaderboard(request: HttpRequest) -> HttpResponse:
    form = LeaderboardForm(request.GET)
    board = selectors.cached_leaderboard(form.scope(), min_tests=form.min_tests_value())
    rows = [{"label": e["model"]["display_name"], **e} for e in board["entries"]]
    context = {"form": form, "board": board, "chart": interval_chart(rows[:25])}
    return render(request, "leaderboard/leaderboard.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET"])
def compare(request: HttpRequest) -> HttpResponse:
    form = CompareForm(request.GET if "models" in request.GET else None)
    context: dict[str, Any] = {"form": form, "result": None}
    if form.is_bound and form.is_valid():
        models: list[LLMModel] = form.cleaned_data["models"]
        scope = form.scope()
        ids = [str(m.pk) for m in models]
        result = analytics_cached(
            "page-compare",
            {**scope.as_dict(), "models": ids},
            lambda: selectors.compare(models=models, scope=scope),
            model_ids=ids,
        )
        context.update(
            result=result,
            by_category=[{**row, "cells": [row["scores"][i] for i in ids]} for row in result["by_category"]],
            tests=[{**row, "cells": [row["scores"][i] for i in ids]} for row in result["tests"]],
            chart=interval_chart([{"label": s["model"]["display_name"], **s} for s in result["summary"]]),
        )
    return render(request, "leaderboard/compare.html", context, status=400 if form.errors else 200)


def _cached_trend(metric: str, *, model: LLMModel, scope: selectors.Scope, params: dict[str, Any]) -> Any:
    return analytics_cached(
        f"page-trends-{metric}",
        params,
        lambda: selectors.trends(metric=metric, interval="day", scope=scope, models=[model]),
        model_ids=[str(model.pk)],
    )


def _series(trends: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"label": s["model"]["display_name"], "points": [(p["t"], p["value"], p["n"]) for p in s["points"]]}
        for s in trends["series"]
    ]


@require_http_methods(["GET"])
def model_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """A model: overall with its interval, per category and difficulty, latency percentiles, trends."""
    model = get_object_or_404(LLMModel, pk=pk)
    form = ScopeForm(request.GET)
    scope = form.scope()
    ids = [str(model.pk)]
    params = {**scope.as_dict(), "model": ids[0]}
    performance = analytics_cached(
        "page-performance", params, lambda: selectors.model_performance(model=model, scope=scope), model_ids=ids
    )
    score, latency = (_cached_trend(metric, model=model, scope=scope, params=params) for metric in ("score", "latency"))
    context = {
        "model": model,
        "form": form,
        "performance": performance,
        "score_chart": line_chart(_series(score), y_max=1.0, percent=True),
        "latency_chart": line_chart(_series(latency), unit=" ms"),
        "recent_results": TestResult.objects.visible_to(request.user)
        .filter(model=model)
        .select_related("test_case")
        .order_by("-executed_at")[:10],
        **model_drift_context(request, model),  # moderators: its drift alerts (SPEC §12)
        "stability": _stability(model, request.user),
    }
    return render(request, "leaderboard/model_detail.html", context, status=400 if form.errors else 200)


def _stability(model: LLMModel, user: Any) -> dict[str, Any]:
    """The model's pass@1, pass@k and flaky tests (SPEC §12) as the page shows them, flaky tests by title."""
    stability = selectors.cached_model_stability(model=model, user=user)
    k = stability["samples_per_test"]
    flaky_rows = [row for row in stability["tests"] if 0 < row["correct"] < row["samples"]][:FLAKY_LISTED]
    titles = TestCase.objects.in_bulk([row["test_id"] for row in flaky_rows])
    return {
        **stability,
        "pass_at_top_k": stability["pass_at_k"].get(str(k)) if k else None,
        "flaky": [
            {**row, "title": titles[UUID(row["test_id"])].title} for row in flaky_rows if UUID(row["test_id"]) in titles
        ],
    }
