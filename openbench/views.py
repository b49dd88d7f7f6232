"""Project-wide views: health, readiness, metrics and the home page."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from openbench.api.exceptions import error_response
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
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics; with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`.

    Metrics name models, providers and request paths with their volumes: not secret enough for a login,
    too much for anyone. Unset (the local default) it stays open, as a scraper on localhost expects.
    """
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Constant-time comparison: the answer's timing must not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = error_response(
                status_code=401, code="not_authenticated", message="Metrics need the METRICS_TOKEN bearer token."
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    _export_provider_spend()
    return ExportToDjangoView(request)


def _export_provider_spend() -> None:
    from evaluations.budgets import provider_spend_this_month
    from providers.metrics import set_provider_spend

    for provider, (spent, reserved) in provider_spend_this_month().items():
        set_provider_spend(provider, spent=float(spent), reserved=float(reserved))


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", home_summary(user=request.user))
