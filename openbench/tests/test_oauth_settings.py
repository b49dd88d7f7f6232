"""Sign-in providers come only from the environment (openbench/settings_oauth.py): none by default, each
one when its client id and secret are set, bad combinations refused at start, and the CSP's form-action
allowing exactly the configured providers' origins (Chromium checks it on the redirect to them)."""

from __future__ import annotations

import json

import pytest

from openbench.tests.test_settings import _run

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'providers': s.SOCIALACCOUNT_PROVIDERS,"
    " 'form_action': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']}))"
)
_VARIABLES = ("GITHUB", "GOOGLE", "OIDC")
NONE_SET = {f"{prefix}_{part}": "" for prefix in _VARIABLES for part in ("CLIENT_ID", "CLIENT_SECRET")}
NONE_SET["OIDC_SERVER_URL"] = ""


def _values(**env: str) -> dict[str, object]:
    done = _run(PROBE, **{**NONE_SET, **env})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_variables_configure_no_provider_and_forms_post_only_to_us() -> None:
    values = _values()
    assert values == {"providers": {}, "form_action": ["'self'"]}


def test_each_provider_comes_from_its_variables() -> None:
    values = _values(
        GITHUB_CLIENT_ID="gh-id",
        GITHUB_CLIENT_SECRET="gh-secret",
        GOOGLE_CLIENT_ID="g-id",
        GOOGLE_CLIENT_SECRET="g-secret",
        OIDC_SERVER_URL="https://login.example.org/realms/staff/",
        OIDC_CLIENT_ID="o-id",
        OIDC_CLIENT_SECRET="o-secret",
        OIDC_PROVIDER_ID="staff",
        OIDC_PROVIDER_NAME="Staff SSO",
    )
    providers = values["providers"]
    assert isinstance(providers, dict)
    assert providers["github"]["APPS"] == [{"client_id": "gh-id", "secret": "gh-secret", "key": ""}]
    assert "user:email" in providers["github"]["SCOPE"]
    assert providers["google"]["APPS"] == [{"client_id": "g-id", "secret": "g-secret", "key": ""}]
    assert providers["openid_connect"]["APPS"] == [
        {
            "provider_id": "staff",
            "name": "Staff SSO",
            "client_id": "o-id",
            "secret": "o-secret",
            "settings": {"server_url": "https://login.example.org/realms/staff"},
        }
    ]
    assert values["form_action"] == [
        "'self'",
        "https://github.com",
        "https://accounts.google.com",
        "https://login.example.org",
    ]


def test_the_authorize_origin_of_an_oidc_provider_can_differ_from_its_issuer() -> None:
    values = _values(
        OIDC_SERVER_URL="https://issuer.example.org",
        OIDC_CLIENT_ID="o-id",
        OIDC_CLIENT_SECRET="o-secret",
        OIDC_AUTHORIZE_ORIGIN="https://login.example.org",
    )
    assert values["form_action"] == ["'self'", "https://login.example.org"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_CLIENT_ID": "gh-id"}, "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET must be set together"),
        ({"GOOGLE_CLIENT_SECRET": "g-secret"}, "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together"),
        ({"OIDC_SERVER_URL": "https://sso.example.org"}, "OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        ({"OIDC_CLIENT_ID": "o", "OIDC_CLIENT_SECRET": "s"}, "OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        (
            {"OIDC_SERVER_URL": "sso.example.org", "OIDC_CLIENT_ID": "o", "OIDC_CLIENT_SECRET": "s"},
            "OIDC_SERVER_URL must be an http:// or https:// URL",
        ),
        (
            {
                "OIDC_SERVER_URL": "https://sso.example.org",
                "OIDC_CLIENT_ID": "o",
                "OIDC_CLIENT_SECRET": "s",
                "OIDC_PROVIDER_ID": "github",
            },
            "OIDC_PROVIDER_ID must be",
        ),
        (
            {
                "OIDC_SERVER_URL": "https://sso.example.org",
                "OIDC_CLIENT_ID": "o",
                "OIDC_CLIENT_SECRET": "s",
                "OIDC_PROVIDER_ID": "../admin",
            },
            "OIDC_PROVIDER_ID must be",
        ),
        (
            {
                "DEBUG": "false",
                "SECRET_KEY": "a-production-secret-key-for-this-test-only",
                "OIDC_SERVER_URL": "http://sso.example.org",
                "OIDC_CLIENT_ID": "o",
                "OIDC_CLIENT_SECRET": "s",
            },
            "OIDC_SERVER_URL must be an https:// URL when DEBUG is false",
        ),
    ],
)
def test_bad_values_fail_at_start(env: dict[str, str], message: str) -> None:
    done = _run("import django; django.setup()", **{**NONE_SET, **env})
    assert done.returncode != 0
    assert message in done.stderr
