"""Sign-in with GitHub, Google or any OpenID Connect provider (SPEC §14), through django-allauth.

Star-imported by `openbench.settings`; every name here is a setting, helpers start with an underscore.
A provider is offered only when its client id and secret are set; with none set there is no button and
every /oauth/ provider URL answers 404. allauth serves only the social flows: our own log-in, sign-up,
password pages and the JWT API stay as they are (accounts/oauth_urls.py mounts only what the flows need).
"""

from __future__ import annotations

import re as _re
from typing import Any as _Any
from urllib.parse import urlsplit as _urlsplit

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from openbench.settings_signup import CONTENT_SECURITY_POLICY as _CSP

_env = _environ.Env()


def _pair(prefix: str) -> tuple[str, str]:
    client_id = _env.str(f"{prefix}_CLIENT_ID", default="")
    secret = _env.str(f"{prefix}_CLIENT_SECRET", default="")
    if bool(client_id) != bool(secret):
        raise _ImproperlyConfigured(f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET must be set together.")
    return client_id, secret


def _origin(url: str, name: str) -> str:
    parts = _urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise _ImproperlyConfigured(f"{name} must be an http:// or https:// URL, not {url!r}.")
    return f"{parts.scheme}://{parts.netloc}"


SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, _Any]] = {}
# Origins the provider buttons' forms end up at: Chromium applies the CSP's form-action to every redirect
# after a form is sent, so /oauth/<provider>/login/'s 302 to the provider must be allowed there.
_FORM_ACTION_ORIGINS: list[str] = []

# (variable prefix, allauth provider, scopes, where its authorize page is). GitHub's user:email scope lets
# allauth read the verified flags of the account's addresses (/user/emails).
_VENDORS = (
    ("GITHUB", "github", ["read:user", "user:email"], "https://github.com"),
    ("GOOGLE", "google", ["profile", "email"], "https://accounts.google.com"),
)
for _prefix, _provider, _scope, _authorize_origin in _VENDORS:
    _client_id, _secret = _pair(_prefix)
    if _client_id:
        SOCIALACCOUNT_PROVIDERS[_provider] = {
            "APPS": [{"client_id": _client_id, "secret": _secret, "key": ""}],
            "SCOPE": _scope,
        }
        _FORM_ACTION_ORIGINS.append(_authorize_origin)

OIDC_SERVER_URL = _env.str("OIDC_SERVER_URL", default="").rstrip("/")
_oidc_id, _oidc_secret = _pair("OIDC")
if bool(OIDC_SERVER_URL) != bool(_oidc_id):
    raise _ImproperlyConfigured("OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set together.")
if OIDC_SERVER_URL:
    _origin(OIDC_SERVER_URL, "OIDC_SERVER_URL")
    # allauth trusts an id_token fetched straight from the token endpoint without checking its signature
    # (OIDC Core 3.1.3.7, "TLS server validation MAY be used"): only true over https.
    if not _env.bool("DEBUG", default=True) and not OIDC_SERVER_URL.startswith("https://"):
        raise _ImproperlyConfigured("OIDC_SERVER_URL must be an https:// URL when DEBUG is false.")
    OIDC_PROVIDER_ID = _env.str("OIDC_PROVIDER_ID", default="sso")
    # It is a URL segment (/oauth/oidc/<id>/login/) and must not shadow the built-in providers' ids.
    if not _re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", OIDC_PROVIDER_ID) or OIDC_PROVIDER_ID in {"github", "google"}:
        raise _ImproperlyConfigured(
            "OIDC_PROVIDER_ID must be lower-case letters, digits, '-' or '_' (up to 40), and not github or google."
        )
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": OIDC_PROVIDER_ID,
                "name": _env.str("OIDC_PROVIDER_NAME", default="Single sign-on"),
                "client_id": _oidc_id,
                "secret": _oidc_secret,
                # The issuer, or its discovery document; allauth appends /.well-known/openid-configuration.
                "settings": {"server_url": OIDC_SERVER_URL},
            }
        ]
    }
    # The authorization endpoint's origin, when the discovery document puts it elsewhere than the issuer.
    _FORM_ACTION_ORIGINS.append(
        _origin(_env.str("OIDC_AUTHORIZE_ORIGIN", default=OIDC_SERVER_URL), "OIDC_AUTHORIZE_ORIGIN")
    )

_CSP["DIRECTIVES"]["form-action"] = [*_CSP["DIRECTIVES"]["form-action"], *_FORM_ACTION_ORIGINS]  # type: ignore[misc]

# Our User: the e-mail is the log-in and there is no username field.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# As our own sign-up: an account is usable at once, no confirmation e-mail (accounts.services.user_create).
ACCOUNT_EMAIL_VERIFICATION = "none"
# Our sign-up already answers 409 for a taken address; hiding it here would make allauth send e-mails instead.
ACCOUNT_PREVENT_ENUMERATION = False
SOCIALACCOUNT_ADAPTER = "accounts.oauth.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_REQUIRED = True
SOCIALACCOUNT_QUERY_EMAIL = True
# An existing account is signed into, and linked, only by an address the provider says is verified.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# The buttons POST (with the CSRF token); a GET shows a confirmation form instead of leaving the site.
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = _env.int("OAUTH_REQUESTS_TIMEOUT", default=10)
