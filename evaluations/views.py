"""Execution pages: the run button's target, the caller's executions, one execution with a live
progress bar (static/js/execution-progress.js polls the API's JSON for it), and cancel."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from catalog.models import TestCase
from evaluations.filters import ExecutionFilter
from evaluations.forms import RunForm
from evaluations.models import Execution
from evaluations.selectors import execution_judge_savings
from evaluations.services import execution_cancel, execution_start
from openbench.exceptions import ApplicationError
from openbench.forms import label_empty_choices


@login_required
@require_POST
def test_case_run(request: HttpRequest, pk: Any) -> HttpResponse:
    """Start an execution of a test the caller may run; the work goes to the background at once.

    A test the caller may not see is a 404; whether they may run it is execution_start's to decide.
    """
    test_case = get_object_or_404(TestCase.objects.visible_to(request.user), pk=pk)
    back = redirect("catalog:test-detail", pk=test_case.pk)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return back
    # Imported late: DRF's settings import this module while rest_framework.views loads.
    from openbench.api.throttles import page_run_refusal

    if refusal := page_run_refusal(request):
        messages.error(request, refusal)
        return back
    try:
        execution = execution_start(
            test_case=test_case,
            models=list(form.cleaned_data["models"]) or None,
            started_by=request.user,  # type: ignore[arg-type]
            request_id=getattr(request, "request_id", ""),
            repeats=form.cleaned_data["repeats"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return back
    return redirect("evaluations:execution-detail", pk=execution.pk)


@login_required
@require_http_methods(["GET"])
def execution_list(request: HttpRequest) -> HttpResponse:
    visible = Execution.objects.visible_to(request.user).select_related("test_case", "created_by")
    filterset = ExecutionFilter(request.GET, queryset=visible)
    label_empty_choices(filterset.form)
    page = Paginator(filterset.qs.order_by("-created_at", "id"), 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filterset": filterset, "page": page, "query": query.urlencode()}
    return render(request, "evaluations/execution_list.html", context)


@login_required
@require_http_methods(["GET"])
def execution_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    execution = get_object_or_404(
        Execution.objects.visible_to(request.user).select_related("test_case", "created_by"), pk=pk
    )
    results = execution.results.select_related("model").order_by("-score", "model__display_name", "sample")
    # Waiting for: the models with fewer results than samples asked (SPEC §12 repeats).
    pending = (
        execution.llm_models.annotate(written=Count("results", filter=Q(results__execution=execution)))
        .filter(written__lt=execution.repeats)
        .order_by("display_name")
    )
    context = {
        "execution": execution,
        "results": results,
        "pending_models": pending,
        "judge_savings": execution_judge_savings(execution=execution),
    }
    return render(request, "evaluations/execution_detail.html", context)


@login_required
@require_POST
def execution_cancel_view(request: HttpRequest, pk: Any) -> HttpResponse:
    execution = get_object_or_404(Execution.objects.visible_to(request.user), pk=pk)
    try:
        execution_cancel(execution=execution, actor=request.user)  # type: ignore[arg-type]
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancelled. Results already finished are kept; no new calls start.")
    return redirect("evaluations:execution-detail", pk=execution.pk)
