"""Account pages: log in (by email), register, log out, the profile with its API keys, and password
change and reset (Django's own views and tokens, in the site's layout).

A log-in that django-axes refuses (account or address locked) is answered by
accounts.lockout.lockout_response through axes' middleware: 429 and a page saying so.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialApp
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ApiKeyForm, EmailAuthenticationForm, RegisterForm
from accounts.models import ApiKey, User
from accounts.services import api_key_create, api_key_revoke, login_lock_clear, password_reset_send, user_create
from catalog.models import TestCase
from evaluations.budgets import budget_of
from evaluations.models import Execution
from openbench.exceptions import ApplicationError


def _throttle_wait(request: HttpRequest, scope: str) -> int | None:
    """Seconds to wait when the API's per-address throttle of this scope refuses the request, else None.

    Pages and API share the counters, so a client gains nothing by switching between them.
    """
    from openbench.api import throttles  # late: DRF settings import it while rest_framework.views loads

    throttle_class = {
        "login": throttles.LoginThrottle,
        "register": throttles.RegisterThrottle,
        "password_reset": throttles.PasswordResetThrottle,
    }[scope]
    throttle = throttle_class()
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return max(1, int(throttle.wait() or 1))


def _too_many(view: Any, request: HttpRequest, wait: int) -> HttpResponse:
    """The form page again, with the reason, as a 429 with Retry-After."""
    form = view.get_form()
    form.add_error(None, f"Too many attempts. Try again in {wait} seconds.")
    response: HttpResponse = view.render_to_response(view.get_context_data(form=form), status=429)
    response["Retry-After"] = str(wait)
    return response


class EmailLoginView(auth_views.LoginView):
    """Django's login view with the email form and the API's login throttle (shared per client address)."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = _throttle_wait(request, "login")
        if wait is not None:
            return _too_many(self, request, wait)
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; the new password hash also revokes every earlier API token."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password-change-done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # It checks the current password, so it spends the log-in budget of the address.
        wait = _throttle_wait(request, "login")
        if wait is not None:
            return _too_many(self, request, wait)
        return super().post(request, *args, **kwargs)


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset e-mail; the same answer whether or not the address has an account."""

    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:password-reset-done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = _throttle_wait(request, "password_reset")
        if wait is not None:
            return _too_many(self, request, wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Form) -> HttpResponse:
        # One service sends the e-mail for the page and the API alike (templates, SITE_URL).
        password_reset_send(email=form.cleaned_data["email"], request=self.request)
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset link page; a bad or used link shows "invalid" and changes nothing."""

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form: Form) -> HttpResponse:
        response = super().form_valid(form)
        assert self.user is not None
        login_lock_clear(user=self.user)  # the mailbox is proven: its owner may log in at once
        return response


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = RegisterForm(request.POST or None)
    if request.method == "POST":
        wait = _throttle_wait(request, "register")
        if wait is not None:
            form.add_error(None, f"Too many sign-ups from your address. Try again in {wait} seconds.")
            response = render(request, "accounts/register.html", {"form": form}, status=429)
            response["Retry-After"] = str(wait)
            return response
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                display_name=form.cleaned_data["display_name"],
            )
        except ApplicationError as exc:
            form.add_error("email" if exc.code == "email_taken" else None, exc.message)
        except ValidationError as exc:  # Django's password validators
            form.add_error("password1", exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to OpenBench. Your account is ready.")
            return redirect("home")
    return render(request, "accounts/register.html", {"form": form}, status=400 if form.errors else 200)


def _user(request: HttpRequest) -> User:
    """The logged-in user (the views that call this are behind login_required)."""
    assert isinstance(request.user, User)
    return request.user


def _sign_in_providers(user: User) -> list[str]:
    """Names of the providers whose identities sign into this account (SPEC §14)."""
    names = set()
    for account in SocialAccount.objects.filter(user=user):
        try:
            names.add(account.get_provider().name)
        except SocialApp.DoesNotExist:  # a provider no longer configured: its id still says which
            names.add(account.provider)
    return sorted(names)


def _profile_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    user = _user(request)
    return {
        "budget": budget_of(user),
        "api_keys": ApiKey.objects.filter(user=user),
        "sign_in_providers": _sign_in_providers(user),
        "key_form": ApiKeyForm(),
        "my_tests": TestCase.objects.filter(created_by=user).live().order_by("-updated_at")[:20],
        "my_executions": Execution.objects.visible_to(user)
        .filter(created_by=user)
        .select_related("test_case")
        .order_by("-created_at")[:10],
        **extra,
    }


@never_cache
@login_required
@require_http_methods(["GET"])
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html", _profile_context(request))


@never_cache
@login_required
@require_POST
def api_key_create_view(request: HttpRequest) -> HttpResponse:
    """Create a key and show its secret on this response only; a reload does not show it again."""
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, secret = api_key_create(user=_user(request), name=form.cleaned_data["name"])
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            context = _profile_context(request, new_key=key, new_secret=secret)
            return render(request, "accounts/profile.html", context, status=201)
    return render(request, "accounts/profile.html", _profile_context(request, key_form=form), status=400)


@login_required
@require_POST
def api_key_revoke_view(request: HttpRequest, pk: Any) -> HttpResponse:
    # Only one's own keys: someone else's key id is a 404 like any object one may not know exists.
    key = get_object_or_404(ApiKey.objects.filter(user=_user(request)), pk=pk)
    api_key_revoke(api_key=key)
    messages.success(request, f"Revoked the key “{key.name}”. Requests using it are refused from now on.")
    return redirect("accounts:profile")
