"""Project-wide views: health, readiness and the home page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from openbench.health import run_readiness_checks
from openbench.selectors import home_summary


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else on purpose."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database (and Redis when configured) answer; 503 naming what failed."""
    ok, checks = run_readiness_checks()
    failing = [name for name, result in checks.items() if not result["ok"]]
    body: dict[str, object] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=200 if ok else 503)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", home_summary(user=request.user))
