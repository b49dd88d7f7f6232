"""Throttles: anonymous and per-user rates (scaled by the user's tier), and strict scopes for
running tests (`run`), estimating runs (`estimate`), exporting results (`export`), creating and editing tests
(`test_write`), logging in (`login`), signing up (`register`) and asking for password-reset e-mails
(`password_reset`). Rates live in settings.REST_FRAMEWORK; the counters live in the default cache, which is
Redis when REDIS_URL is set, so every web process shares them.

Every throttle here reads the client address with accounts.addresses.client_ip (X-Forwarded-For only
through TRUSTED_PROXY_COUNT), the rule django-axes uses for log-in locks, so a client cannot get a
fresh budget by sending a new X-Forwarded-For.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import throttling

from accounts.addresses import client_ip

if TYPE_CHECKING:  # settings.REST_FRAMEWORK names these classes, so they load while DRF's views do
    from rest_framework.request import Request
    from rest_framework.views import APIView

# How many times the base user rate each tier gets; None means not throttled by the user rate.
TIER_MULTIPLIERS: dict[str, int | None] = {"free": 1, "pro": 5, "unlimited": None}


class ClientAddressMixin:
    """The client address as accounts.addresses.client_ip reads it (DRF's NUM_PROXIES is set to the
    same TRUSTED_PROXY_COUNT, so any DRF throttle outside this module agrees)."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or ""


class AnonRateThrottle(ClientAddressMixin, throttling.AnonRateThrottle):
    """Anonymous callers, by client address."""


class TieredUserRateThrottle(ClientAddressMixin, throttling.UserRateThrottle):
    """The `user` rate times the tier's multiplier; anonymous callers are keyed by address."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is not None and user.is_authenticated:
            tier = getattr(user, "tier", "free")
            multiplier = TIER_MULTIPLIERS.get(tier, 1)
            if multiplier is None:
                return True
            base, self.duration = self.parse_rate(self.get_rate())
            self.num_requests = (base or 0) * multiplier
        return super().allow_request(request, view)


class _PerCallerThrottle(ClientAddressMixin, throttling.SimpleRateThrottle):
    """A scope's own budget per user (per client address for anonymous callers)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RunThrottle(_PerCallerThrottle):
    """POST /tests/{id}/run: each run costs provider calls, so it has its own, stricter budget."""

    scope = "run"


class ExportThrottle(_PerCallerThrottle):
    """GET /results/export: a signed-in export streams every row the caller may see (the whole public table),
    holding a web worker and a database cursor for as long as it takes."""

    scope = "export"


class EstimateThrottle(_PerCallerThrottle):
    """POST /executions/estimate: one request may ask for 10,000 evaluations to be counted (and a suite's page
    asks as it loads), so estimates have their own budget per user."""

    scope = "estimate"


class TestWriteThrottle(_PerCallerThrottle):
    """Creating and editing tests: each write may store a revision with a 1 MB prompt. Moderators, who import and
    fix tests in bulk, are not counted."""

    __test__ = False  # not a pytest test class, whatever its name
    scope = "test_write"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if getattr(request.user, "is_moderator", False):
            return True
        return super().allow_request(request, view)


def _page_refusal(throttle: _PerCallerThrottle, request: Any, done: str) -> str | None:
    """For a page: the API's budget for the same action, shared, so the same person cannot dodge it by clicking
    instead of calling. None when the action may go on, else what to tell them."""
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return f"You have {done} recently. Try again in {int(throttle.wait() or 1)} s."


def page_run_refusal(request: Any) -> str | None:
    """For the pages that start runs (a test's, a suite's): the `run` budget."""
    return _page_refusal(RunThrottle(), request, "started many runs")


def page_test_write_refusal(request: Any) -> str | None:
    """For the pages that create and edit tests: the `test_write` budget."""
    return _page_refusal(TestWriteThrottle(), request, "saved many tests")


class _PerAddressThrottle(ClientAddressMixin, throttling.SimpleRateThrottle):
    """Every request counts against the client address, whoever is logged in."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(_PerAddressThrottle):
    """Password attempts per client address, against brute force (on top of django-axes' locks)."""

    scope = "login"


class RegisterThrottle(_PerAddressThrottle):
    """Sign-ups per client address (THROTTLE_REGISTER): slows account farming and probing which
    addresses are registered."""

    scope = "register"


class PasswordResetThrottle(_PerAddressThrottle):
    """Password-reset requests and confirmations per client address: no mail-bombing an inbox."""

    scope = "password_reset"


DEFAULT_THROTTLES: list[type[throttling.BaseThrottle]] = [AnonRateThrottle, TieredUserRateThrottle]
