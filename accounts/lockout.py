"""Log-in limits (SPEC §10 "Log-in"), enforced by django-axes; this module holds only what axes asks
the project to decide: which account an attempt was for, how a lock answers, and the separate limit
for a client address (the address itself: accounts.addresses.client_ip).

The settings (openbench/settings.py, "Log-in limits" block) point axes at these callables.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from openbench.api.exceptions import error_body, is_api_request

LOCKED_MESSAGE = (
    "Too many failed log-ins for this account or from this address. "
    "Log-in is locked for a while, whatever the password; try again later or reset your password."
)


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str | None:
    """The account an attempt was for, normalised as accounts are stored (trimmed, lower-case).

    The API passes `email`, the log-in page and the admin pass `username`; without normalising,
    `Owner@Example.com` and `owner@example.com` would be two counters for one account.
    """
    value: Any = None
    if credentials:
        value = credentials.get("email") or credentials.get("username")
    if not value:
        data: Any = getattr(request, "data", None) or getattr(request, "POST", {})
        value = data.get("email") or data.get("username")
    if not value:
        return None
    return str(value).strip().lower()[:255]


def lock_window_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """What a locked-out attempt answers: 429 with Retry-After; the error envelope on the API
    (code `login_locked`), a page saying so everywhere else (log-in page and admin)."""
    seconds = lock_window_seconds()
    response: HttpResponse
    if is_api_request(request):
        response = JsonResponse(
            error_body(code="login_locked", message=LOCKED_MESSAGE, details={"retry_after_seconds": seconds}),
            status=429,
        )
    else:
        context = {"message": LOCKED_MESSAGE, "minutes": max(1, round(seconds / 60))}
        response = render(request, "accounts/login_locked.html", context, status=429)
    # The lock ends at most one window after the failure that set it (failures during a lock do not
    # extend it: AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is off).
    response["Retry-After"] = str(seconds)
    return response


class LoginFailureHandler(AxesDatabaseHandler):
    """axes' database handler with one limit per account (LOGIN_FAILURE_LIMIT) and its own, larger
    limit per client address (LOGIN_ADDRESS_FAILURE_LIMIT).

    axes compares the largest failure count of the lockout parameters with a single limit; the
    address count is scaled so that reaching LOGIN_ADDRESS_FAILURE_LIMIT is what reaches that limit.
    (floor(n * L / A) >= L exactly when n >= A, since L is a whole number.) People behind one office
    NAT share an address, so its limit is higher than an account's: one person there mistyping does
    not lock their colleagues out, while spraying one password over many accounts still stops.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        account_limit = get_failure_limit(request, credentials)
        address_limit = max(1, int(getattr(settings, "LOGIN_ADDRESS_FAILURE_LIMIT", account_limit)))
        parameters = get_lockout_parameters(request, credentials)
        counts = [0]
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials), strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            if parameter == "ip_address":
                failures = failures * account_limit // address_limit
            counts.append(failures)
        return max(counts)
