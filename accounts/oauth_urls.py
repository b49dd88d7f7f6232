"""/oauth/: the social sign-in flows of django-allauth and nothing else of it.

allauth's own log-in, sign-up, e-mail and password pages are not mounted (ours are); the few URL names its
social flows reverse point at our pages instead. A provider with no client id configured answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.socialaccount import views as social_views
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.github.provider import GitHubProvider
from allauth.socialaccount.providers.google.provider import GoogleProvider
from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns
from allauth.socialaccount.providers.openid_connect import urls as openid_connect_urls
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, URLResolver, path
from django.views.generic import RedirectView, TemplateView

from accounts.oauth import refusal


def _only_when_configured(provider_id: str, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not get_adapter(request).list_apps(request, provider=provider_id):
            raise Http404("This sign-in provider is not configured.")
        return view(request, *args, **kwargs)

    return guarded


def _guard(patterns: list[URLPattern | URLResolver], provider_id: str) -> list[URLPattern | URLResolver]:
    guarded: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            guarded.append(URLResolver(pattern.pattern, _guard(pattern.url_patterns, provider_id)))
        else:
            guarded.append(
                URLPattern(pattern.pattern, _only_when_configured(provider_id, pattern.callback), None, pattern.name)
            )
    return guarded


def signup_refused(request: HttpRequest) -> HttpResponse:
    """allauth sends a sign-in it cannot finish by itself to its sign-up form; we have none (the address
    must come from the provider), so the pending sign-in is dropped and refused."""
    if request.session.pop("socialaccount_sociallogin", None) is None:
        return redirect("accounts:login")
    return refusal(request, reason="email_unverified", provider="the provider", status=409, taken=True)


urlpatterns: list[URLPattern | URLResolver] = [
    *_guard(default_urlpatterns(GitHubProvider), GitHubProvider.id),
    *_guard(default_urlpatterns(GoogleProvider), GoogleProvider.id),
    # /oauth/oidc/<provider_id>/login/ (and /callback/): allauth answers 404 for an unknown provider id.
    *openid_connect_urls.urlpatterns,
    path("login/cancelled/", social_views.login_cancelled, name="socialaccount_login_cancelled"),
    path("login/error/", social_views.login_error, name="socialaccount_login_error"),
    path("signup/", signup_refused, name="socialaccount_signup"),
    # Names allauth reverses after a flow ends, sent to our own pages.
    path("login/", RedirectView.as_view(pattern_name="accounts:login", query_string=True), name="account_login"),
    path("connections/", RedirectView.as_view(pattern_name="accounts:profile"), name="socialaccount_connections"),
    path("inactive/", TemplateView.as_view(template_name="accounts/oauth_inactive.html"), name="account_inactive"),
]
