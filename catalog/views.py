"""Catalog pages: the tests list, a test with its results and run button, new/edit/archive, the models.

Thin: parse (forms, FilterSets shared with the API), scope (`visible_to`, `runnable_by`), call a
service or selector, render. A test the caller may not see is a 404, as in the API.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from catalog.filters import LLMModelFilter, TestCaseFilter
from catalog.forms import TestCaseForm
from catalog.models import LLMModel, TestCase
from catalog.services import test_case_archive, test_case_create, test_case_update
from evaluations.forms import RunForm
from evaluations.models import Execution, TestResult
from leaderboard import selectors
from openbench.exceptions import ApplicationError
from openbench.forms import add_service_errors, label_empty_choices

PAGE_SIZE = 20
ORDERINGS = {
    "-created_at": "Newest",
    "title": "Title",
    "category": "Category",
    "-approved_at": "Recently approved",
}


@require_http_methods(["GET"])
def test_list(request: HttpRequest) -> HttpResponse:
    visible = TestCase.objects.visible_to(request.user)
    filterset = TestCaseFilter(request.GET, queryset=visible, request=request)
    label_empty_choices(filterset.form)
    search = request.GET.get("search", "").strip()
    ordering = request.GET.get("ordering", "-created_at")
    if ordering not in ORDERINGS:
        ordering = "-created_at"
    tests = filterset.qs.select_related("created_by").prefetch_related("tags")
    # Tests not approved yet have no approval date: they go last, on every database.
    order = F(ordering.lstrip("-")).desc(nulls_last=True) if ordering.startswith("-") else F(ordering).asc()
    page = Paginator(tests.order_by(order, "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "page": page,
        "search": search,
        "ordering": ordering,
        "orderings": ORDERINGS,
        "categories": visible.live().order_by("category").values_list("category", flat=True).distinct(),
        "query": query.urlencode(),
        "mine": request.user.is_authenticated and request.GET.get("created_by") == str(request.user.pk),
    }
    return render(request, "catalog/test_list.html", context)


def _visible_test(request: HttpRequest, pk: Any) -> TestCase:
    queryset = TestCase.objects.visible_to(request.user).select_related("created_by", "moderated_by")
    test_case: TestCase = get_object_or_404(queryset.prefetch_related("tags"), pk=pk)
    return test_case


def can_edit(user: Any, test_case: TestCase) -> bool:
    """Writes are for the author and moderators (as the API's IsOwnerOrModeratorForWrites)."""
    if not user.is_authenticated or test_case.status == TestCase.Status.ARCHIVED:
        return False
    return bool(user.is_moderator or test_case.created_by_id == user.pk)


def latest_results(user: Any, test_case: TestCase) -> QuerySet[TestResult]:
    """The most recent result of each model on this test (any revision), best score first."""
    results = TestResult.objects.visible_to(user).filter(test_case=test_case)
    newest = results.filter(model=OuterRef("model")).order_by("-executed_at", "-pk").values("pk")[:1]
    return (
        results.filter(pk=Subquery(newest))
        .select_related("model")
        .order_by("-score", "latency_ms", "model__display_name")
    )


def _pretty(value: Any) -> str | None:
    return None if value is None else json.dumps(value, indent=2, ensure_ascii=False)


@require_http_methods(["GET"])
def test_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    test_case = _visible_test(request, pk)
    user = request.user
    is_author_or_moderator = user.is_authenticated and (
        getattr(user, "is_moderator", False) or test_case.created_by_id == user.pk
    )
    context = {
        "test": test_case,
        # With each result's moderator label (judging), shown to moderators with the ✓/✗ label buttons.
        "results": latest_results(user, test_case).select_related("label"),
        "can_label": bool(getattr(user, "is_moderator", False)),
        "executions": Execution.objects.visible_to(user).filter(test_case=test_case).order_by("-created_at")[:10],
        "can_edit": can_edit(user, test_case),
        "can_run": TestCase.objects.runnable_by(user).filter(pk=test_case.pk).exists(),
        "run_form": RunForm(test_case=test_case),
        "show_moderation": is_author_or_moderator,
        "pretty": {name: _pretty(getattr(test_case, name)) for name in ("expected_output", "output_schema")},
        "config": _pretty(test_case.evaluation_config) if test_case.evaluation_config else "",
        "events": test_case.moderation_events.select_related("actor")[:20] if is_author_or_moderator else [],
    }
    return render(request, "catalog/test_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def test_create(request: HttpRequest) -> HttpResponse:
    form = TestCaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _refuse_past_the_write_budget(request)
            test_case = test_case_create(author=request.user, **form.service_fields())  # type: ignore[arg-type]
        except (ValidationError, ApplicationError) as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Test submitted. It is pending until a moderator approves it.")
            return redirect("catalog:test-detail", pk=test_case.pk)
    return _form_page(request, form, None)


@login_required
@require_http_methods(["GET", "POST"])
def test_edit(request: HttpRequest, pk: Any) -> HttpResponse:
    test_case = _visible_test(request, pk)
    if not can_edit(request.user, test_case):
        raise PermissionDenied("Only the author or a moderator may change this test.")
    form = TestCaseForm(request.POST or None, initial=TestCaseForm.initial_for(test_case))
    if request.method == "POST" and form.is_valid():
        revision = test_case.revision
        try:
            _refuse_past_the_write_budget(request)
            test_case = test_case_update(test_case=test_case, editor=request.user, **form.service_fields())  # type: ignore[arg-type]
        except (ValidationError, ApplicationError) as exc:
            add_service_errors(form, exc)
            test_case.refresh_from_db()  # the service changed the instance before it refused
        else:
            if test_case.revision != revision:
                messages.success(request, f"Saved as revision {test_case.revision}; it is pending review again.")
            else:
                messages.success(request, "Saved.")
            return redirect("catalog:test-detail", pk=test_case.pk)
    return _form_page(request, form, test_case)


def _refuse_past_the_write_budget(request: HttpRequest) -> None:
    """The API's `test_write` budget, shared by the pages: said on the form."""
    # Imported late: DRF's settings import this module while rest_framework.views loads.
    from openbench.api.throttles import page_test_write_refusal

    if refusal := page_test_write_refusal(request):
        raise ApplicationError(refusal, code="throttled", status=429)


def _form_page(request: HttpRequest, form: TestCaseForm, test_case: TestCase | None) -> HttpResponse:
    status = 400 if form.errors else 200
    return render(request, "catalog/test_form.html", {"form": form, "test": test_case}, status=status)


@login_required
@require_POST
def test_archive(request: HttpRequest, pk: Any) -> HttpResponse:
    test_case = _visible_test(request, pk)
    if not can_edit(request.user, test_case):
        raise PermissionDenied("Only the author or a moderator may archive this test.")
    test_case_archive(test_case=test_case, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Archived “{test_case.title}”. Its results are kept.")
    return redirect("catalog:test-list")


# --- models -------------------------------------------------------------------------------------


@require_http_methods(["GET"])
def model_list(request: HttpRequest) -> HttpResponse:
    filterset = LLMModelFilter(request.GET, queryset=LLMModel.objects.all())
    label_empty_choices(filterset.form)
    board = selectors.cached_leaderboard(selectors.Scope())
    ranking = {entry["model"]["id"]: entry for entry in board["entries"]}
    models = [(model, ranking.get(str(model.pk))) for model in filterset.qs.order_by("display_name", "name")]
    return render(request, "catalog/model_list.html", {"filterset": filterset, "models": models})
