"""Judging pages: the judges ranked by agreement with moderators' labels, and the test page's label buttons."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from evaluations.models import TestResult
from judging.selectors import judge_ranking
from judging.services import result_label
from judging.stats import KAPPA_CI_METHOD
from openbench.exceptions import ApplicationError


@require_http_methods(["GET"])
def judge_list(request: HttpRequest) -> HttpResponse:
    """Judge models ranked by Cohen's kappa, then accuracy, with the number of labels behind each."""
    context = {"judges": judge_ranking(user=request.user), "ci_method": KAPPA_CI_METHOD}
    return render(request, "judging/judge_list.html", context)


@login_required
@require_POST
def result_label_view(request: HttpRequest, pk: Any) -> HttpResponse:
    """The ✓/✗ buttons of the test page: a plain form POST, back to the test page."""
    if not getattr(request.user, "is_moderator", False):
        raise PermissionDenied("Only moderators may label results.")
    result = get_object_or_404(TestResult.objects.visible_to(request.user), pk=pk)
    verdict = request.POST.get("is_correct")
    if verdict not in ("true", "false"):
        messages.error(request, "Choose correct or incorrect.")
    else:
        try:
            result_label(result=result, moderator=request.user, is_correct=verdict == "true")  # type: ignore[arg-type]
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Labelled {'correct' if verdict == 'true' else 'incorrect'}.")
    return redirect(reverse("catalog:test-detail", args=[result.test_case_id]) + f"#result-{result.pk}")
