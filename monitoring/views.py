"""Pages of SPEC §12: suites (anyone reads and runs; moderators create, edit, delete), schedules and alerts
(moderators), a model's drift history.

Thin: scope (`visible_to`, moderators only where the API is), call a service, render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.models import LLMModel, Suite
from catalog.suites import suite_create, suite_delete, suite_tests, suite_update
from evaluations.forms import RunForm
from evaluations.models import Execution
from monitoring.filters import AlertFilter
from monitoring.forms import SuiteForm
from monitoring.models import Alert, Schedule, SuiteRun
from monitoring.services import alert_acknowledge, suite_run_start
from openbench.exceptions import ApplicationError
from openbench.forms import add_service_errors

PAGE_SIZE = 20
SUITE_TESTS_SHOWN = 200


def _require_moderator(request: HttpRequest) -> None:
    if not getattr(request.user, "is_moderator", False):
        raise PermissionDenied


@require_GET
def suite_list(request: HttpRequest) -> HttpResponse:
    suites = Suite.objects.prefetch_related("tags").annotate(explicit_tests=Count("tests")).order_by("name")
    return render(request, "monitoring/suite_list.html", {"suites": suites})


@require_GET
def suite_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """A suite, the tests it runs now (as far as the reader may see them) and its latest runs (the schedules';
    a person's only to them and moderators)."""
    suite = get_object_or_404(Suite.objects.prefetch_related("tags"), pk=pk)
    # Counted and sliced in the database: a category suite may select many thousands of tests.
    tests = suite_tests(suite=suite, user=request.user)
    unfinished = Count("executions", filter=~Q(executions__status__in=Execution.FINISHED_STATUSES))
    runs = (
        SuiteRun.objects.visible_to(request.user)
        .filter(suite=suite)
        .select_related("schedule", "started_by")
        .annotate(executions_total=Count("executions"), executions_unfinished=unfinished)
        .order_by("-created_at", "id")[:PAGE_SIZE]
    )
    shown = list(tests[:SUITE_TESTS_SHOWN])
    count = len(shown) if len(shown) < SUITE_TESTS_SHOWN else tests.count()
    context = {
        "suite": suite,
        "tests": shown,
        "tests_count": count,
        "runs": runs,
        "run_form": RunForm() if request.user.is_authenticated else None,
    }
    return render(request, "monitoring/suite_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def suite_create_view(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    form = SuiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            suite = suite_create(created_by=request.user, **form.service_fields())  # type: ignore[arg-type]
        except (ValidationError, ApplicationError) as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Created suite “{suite.name}” (version 1).")
            return redirect("monitoring:suite-detail", pk=suite.pk)
    return _suite_form_page(request, form, None)


@login_required
@require_http_methods(["GET", "POST"])
def suite_edit(request: HttpRequest, pk: Any) -> HttpResponse:
    _require_moderator(request)
    suite = get_object_or_404(Suite.objects.prefetch_related("tags"), pk=pk)
    form = SuiteForm(request.POST or None, initial=SuiteForm.initial_for(suite))
    if request.method == "POST" and form.is_valid():
        version = suite.version
        try:
            suite = suite_update(suite=suite, editor=request.user, **form.service_fields())  # type: ignore[arg-type]
        except (ValidationError, ApplicationError) as exc:
            add_service_errors(form, exc)
            suite.refresh_from_db()  # the service changed the instance before it refused
        else:
            if suite.version != version:
                messages.success(request, f"Saved as version {suite.version}: what the suite selects changed.")
            else:
                messages.success(request, "Saved.")
            return redirect("monitoring:suite-detail", pk=suite.pk)
    return _suite_form_page(request, form, suite)


def _suite_form_page(request: HttpRequest, form: SuiteForm, suite: Suite | None) -> HttpResponse:
    status = 400 if form.errors else 200
    return render(request, "monitoring/suite_form.html", {"form": form, "suite": suite}, status=status)


@login_required
@require_POST
def suite_delete_view(request: HttpRequest, pk: Any) -> HttpResponse:
    _require_moderator(request)
    suite = get_object_or_404(Suite, pk=pk)
    try:
        suite_delete(suite=suite)
    except ApplicationError as exc:  # suite_in_use: schedules or runs refer to it
        messages.error(request, exc.message)
        return redirect("monitoring:suite-detail", pk=suite.pk)
    messages.success(request, f"Deleted suite “{suite.name}”.")
    return redirect("monitoring:suite-list")


@login_required
@require_POST
def suite_run(request: HttpRequest, pk: Any) -> HttpResponse:
    """Run a suite as the signed-in user, as POST /api/v1/suites/{id}/run does: the tests they may see,
    charged to them, under the same run budget."""
    suite = get_object_or_404(Suite, pk=pk)
    back = redirect("monitoring:suite-detail", pk=suite.pk)
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
        run = suite_run_start(
            suite=suite,
            models=list(form.cleaned_data["models"]) or None,
            repeats=form.cleaned_data["repeats"],
            started_by=request.user,  # type: ignore[arg-type]
            request_id=getattr(request, "request_id", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return back
    count = len(run.test_ids)
    tests = f"{count} test{'s' if count != 1 else ''}"
    messages.success(request, f"Started a run of {tests} at version {run.suite_version}.")
    return back


@login_required
@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    schedules = Schedule.objects.select_related("suite").prefetch_related("llm_models").order_by("created_at", "id")
    return render(request, "monitoring/schedule_list.html", {"schedules": schedules})


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    _require_moderator(request)
    filterset = AlertFilter(request.GET, queryset=Alert.objects.select_related("model", "schedule__suite"))
    alerts = filterset.qs.order_by("-created_at", "id") if filterset.is_valid() else Alert.objects.none()
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filterset": filterset, "page": page, "query": query.urlencode()}
    return render(request, "monitoring/alert_list.html", context, status=400 if filterset.errors else 200)


@login_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, pk: Any) -> HttpResponse:
    _require_moderator(request)
    alert = get_object_or_404(Alert, pk=pk)
    alert_acknowledge(alert=alert, user=request.user)  # type: ignore[arg-type]
    messages.success(request, "Alert acknowledged.")
    # Back to the page the button was on (the alerts list or a model page), never to another site.
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("monitoring:alert-list")


def model_drift_context(request: HttpRequest, model: LLMModel) -> dict[str, Any]:
    """What the model page shows of drift: moderators see its alerts and how many are unacknowledged."""
    if not getattr(request.user, "is_moderator", False):
        return {}
    alerts = Alert.objects.filter(model=model).select_related("schedule__suite").order_by("-created_at", "id")
    return {"drift_alerts": alerts[:10], "drift_unacknowledged": alerts.unacknowledged().count()}
