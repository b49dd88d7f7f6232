"""Sign-in with an OpenID Connect provider (SPEC §14), end to end: the Django test client walks the whole
redirect flow against a real local provider (accounts/tests/oidc_provider.py) that allauth reaches over
HTTP for discovery, the token, the JWKS and userinfo. Nothing of allauth is mocked."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tests.oidc_provider import CLIENT_ID, PROVIDER_ID, FakeOIDCProvider
from accounts.tests.test_passwords import link_parts
from openbench.api.throttles import RegisterThrottle
from openbench.tests.api import V1

pytestmark = pytest.mark.django_db

LOGIN_URL = f"/oauth/oidc/{PROVIDER_ID}/login/"


def start(client: Client, next_url: str = "") -> str:
    """Press the button: our /oauth/ URL answers with a redirect to the provider's authorize endpoint."""
    response = client.post(LOGIN_URL + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def authorize(url: str) -> str:
    """The provider's side: it signs the person in and redirects back to our callback with a code."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def callback(client: Client, url: str) -> Any:
    parts = urlsplit(url)
    assert parts.path == f"/oauth/oidc/{PROVIDER_ID}/login/callback/"
    return client.get(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})


def sign_in(client: Client, next_url: str = "") -> Any:
    return callback(client, authorize(start(client, next_url)))


def signed_in_as(client: Client) -> str | None:
    response = client.get("/profile/")
    if response.status_code != 200:
        return None
    return str(response.context["user"].email)


def test_a_new_person_gets_an_account_with_the_user_role_and_is_signed_in(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="alice-1", email="Alice@Example.com", name="Alice Liddell")
    client = Client()
    location = start(client)
    assert location.startswith(f"{oidc.base_url}/authorize?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [CLIENT_ID]
    assert "openid" in query["scope"][0].split()

    response = callback(client, authorize(location))

    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="alice@example.com")
    assert user.role == User.Role.USER
    assert not user.is_staff and not user.is_superuser
    assert user.display_name == "Alice Liddell"
    assert not user.has_usable_password()  # they sign in with the provider
    assert SocialAccount.objects.get(user=user).uid == "alice-1"
    assert signed_in_as(client) == "alice@example.com"
    # allauth really spoke to the provider: discovery, code exchange, userinfo.
    assert {"GET /.well-known/openid-configuration", "POST /token", "GET /userinfo"} <= set(oidc.seen)


def test_the_same_identity_signs_into_the_same_account_next_time(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="bob-7", email="bob@example.com")
    sign_in(Client())
    # The provider now reports another address: the identity, not the address, decides.
    oidc.identity(sub="bob-7", email="bob.new@example.com")
    client = Client()
    response = sign_in(client, next_url="/tests/")
    assert response.status_code == 302
    assert response["Location"] == "/tests/"
    assert signed_in_as(client) == "bob@example.com"
    assert User.objects.count() == 1


def test_a_verified_address_signs_into_the_existing_account_and_links_it(oidc: FakeOIDCProvider, owner: User) -> None:
    _, secret = api_key_create(user=owner, name="made before the link")
    oidc.identity(sub="owner-sso", email="OWNER@example.com", email_verified=True)
    client = Client()

    response = sign_in(client)

    assert response.status_code == 302
    assert signed_in_as(client) == owner.email
    assert User.objects.count() == 1
    account = SocialAccount.objects.get(uid="owner-sso")
    assert account.user_id == owner.pk
    # Nobody had proven the address here: the password and API keys set before the link stop working,
    # so whoever registered the address in advance cannot keep a way in.
    owner.refresh_from_db()
    assert not owner.has_usable_password()
    assert not ApiKey.objects.active().filter(user=owner).exists()
    assert APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=secret).status_code == 401
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("now linked" in m and "password was cleared" in m for m in messages)
    # The next sign-in goes by the linked identity and clears nothing more.
    assert signed_in_as(sign_in_again(oidc)) == owner.email


def sign_in_again(oidc: FakeOIDCProvider) -> Client:
    client = Client()
    response = sign_in(client)
    assert response.status_code == 302
    return client


def test_an_unverified_address_does_not_reach_the_existing_account(oidc: FakeOIDCProvider, owner: User) -> None:
    oidc.identity(sub="mallory", email=owner.email, email_verified=False)
    client = Client()

    response = sign_in(client)

    assert response.status_code == 409
    assert 'data-reason="email_unverified"' in response.content.decode()
    assert signed_in_as(client) is None
    assert not SocialAccount.objects.exists()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)  # untouched
    assert User.objects.count() == 1
    # The password log-in of the account still works as before.
    assert Client().post("/login/", {"username": owner.email, "password": PASSWORD}).status_code == 302


def test_an_unverified_new_address_creates_no_account(oidc: FakeOIDCProvider) -> None:
    # Else it could claim the address for an account that its real owner's verified sign-in would join later.
    oidc.identity(sub="someone", email="victim@example.com", email_verified=False)
    client = Client()
    response = sign_in(client)
    assert response.status_code == 400
    assert 'data-reason="email_unverified"' in response.content.decode()
    assert not User.objects.exists()
    assert signed_in_as(client) is None


def test_a_provider_sharing_no_address_is_refused(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="anon", email=None)
    response = sign_in(Client())
    assert response.status_code == 400
    assert 'data-reason="no_email"' in response.content.decode()
    assert not User.objects.exists()


def test_a_callback_with_another_state_is_refused(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="carol", email="carol@example.com")
    client = Client()
    back = urlsplit(authorize(start(client)))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    query["state"] = "forged-state"

    response = client.get(back.path, query)

    assert response.status_code == 401
    assert 'id="oauth-error"' in response.content.decode()
    assert not User.objects.exists()
    assert signed_in_as(client) is None
    assert "POST /token" not in oidc.seen  # the code was never exchanged


def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(oidc: FakeOIDCProvider) -> None:
    # Login CSRF: an attacker's own code and state, replayed in the victim's browser, must not sign it in.
    oidc.identity(sub="attacker", email="attacker@example.com")
    back = authorize(start(Client()))
    victim = Client()
    response = callback(victim, back)
    assert response.status_code == 401
    assert 'id="oauth-error"' in response.content.decode()
    assert signed_in_as(victim) is None
    assert not User.objects.exists()


def test_the_login_page_shows_a_button_per_configured_provider(oidc: FakeOIDCProvider) -> None:
    for path in ("/login/", "/register/"):
        page = Client().get(path).content.decode()
        assert f'action="{LOGIN_URL}?process=login"' in page
        assert "Fake SSO" in page


def test_a_get_of_the_login_url_asks_to_confirm_instead_of_leaving_the_site(oidc: FakeOIDCProvider) -> None:
    response = Client().get(LOGIN_URL)
    assert response.status_code == 200
    assert 'id="social-confirm"' in response.content.decode()


def test_with_no_provider_configured_there_is_no_button_and_the_urls_answer_404(settings: Any) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    for path in ("/login/", "/register/"):
        page = Client().get(path).content.decode()
        assert "social-sign-in" not in page
        assert "/oauth/" not in page
    for path in (
        "/oauth/github/login/",
        "/oauth/github/login/callback/",
        "/oauth/google/login/",
        "/oauth/google/login/callback/",
        f"/oauth/oidc/{PROVIDER_ID}/login/",
        f"/oauth/oidc/{PROVIDER_ID}/login/callback/",
    ):
        assert Client().get(path).status_code == 404, path
        assert Client().post(path).status_code == 404, path


def test_allauth_serves_no_pages_of_its_own_beside_the_social_flow() -> None:
    # Our log-in, sign-up and password pages are the only ones: no second way to register or reset.
    for path in (
        "/oauth/password/reset/",
        "/oauth/password/change/",
        "/oauth/email/",
        "/oauth/logout/",
        "/oauth/3rdparty/",
        "/oauth/confirm-email/",
    ):
        assert Client().get(path).status_code == 404, path
    # The names allauth's flows reverse lead to our pages.
    assert Client().get("/oauth/login/")["Location"] == "/login/"
    assert Client().get("/oauth/signup/")["Location"] == "/login/"


def test_a_socially_signed_in_user_gets_api_access_with_an_api_key(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="dana", email="dana@example.com")
    client = Client()
    sign_in(client)
    profile = client.get("/profile/").content.decode()
    assert "signs in with Fake SSO" in profile
    assert 'id="no-password"' in profile  # the page says to use an API key
    assert "/password/change/" not in profile  # there is no old password to give
    response = client.post("/profile/api-keys/", {"name": "notebook"})
    assert response.status_code == 201
    secret = response.context["new_secret"]
    me = APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=secret)
    assert me.status_code == 200
    assert me.json()["email"] == "dana@example.com"
    # There is no password, so the password log-in of the API refuses, as for a wrong password.
    login = APIClient().post(f"{V1}/auth/login", {"email": "dana@example.com", "password": ""}, format="json")
    assert login.status_code in {400, 401}


def test_a_locked_password_log_in_stays_locked_and_the_provider_still_signs_in(
    oidc: FakeOIDCProvider, owner: User, settings: Any
) -> None:
    # django-axes counts password guesses; a provider's sign-in proves the person another way.
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        Client().post("/login/", {"username": owner.email, "password": "wrong"}, REMOTE_ADDR="203.0.113.5")
    locked = Client().post("/login/", {"username": owner.email, "password": PASSWORD}, REMOTE_ADDR="203.0.113.6")
    assert locked.status_code == 429
    oidc.identity(sub="owner-sso", email=owner.email)
    client = Client()
    assert sign_in(client).status_code == 302
    assert signed_in_as(client) == owner.email


def test_an_inactive_account_is_not_signed_into(oidc: FakeOIDCProvider) -> None:
    UserFactory(email="gone@example.com", is_active=False)
    oidc.identity(sub="gone", email="gone@example.com")
    client = Client()
    response = sign_in(client)
    assert response.status_code == 302
    assert response["Location"] == "/oauth/inactive/"
    assert signed_in_as(client) is None


def test_new_accounts_from_a_provider_count_against_the_sign_up_rate_of_the_address(
    oidc: FakeOIDCProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RegisterThrottle, "THROTTLE_RATES", {"register": "1/hour"})
    oidc.identity(sub="first", email="first@example.com")
    assert sign_in(Client()).status_code == 302
    oidc.identity(sub="second", email="second@example.com")
    response = sign_in(Client())
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert 'data-reason="throttled"' in response.content.decode()
    assert not User.objects.filter(email="second@example.com").exists()
    # Signing into an existing account is no sign-up: not limited by it.
    oidc.identity(sub="first", email="first@example.com")
    assert sign_in(Client()).status_code == 302


def test_a_signed_in_user_links_an_identity_to_their_own_account(oidc: FakeOIDCProvider, owner: User) -> None:
    _, secret = api_key_create(user=owner, name="kept")
    oidc.identity(sub="owner-elsewhere", email="owner.alias@example.net", email_verified=False)
    client = Client()
    client.force_login(owner)
    location = start_process(client, "connect")
    response = callback(client, authorize(location))
    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    assert SocialAccount.objects.get(uid="owner-elsewhere").user_id == owner.pk
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)  # linking from inside the account takes nothing away
    assert APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=secret).status_code == 200
    # From now on that identity signs into the account.
    assert signed_in_as(sign_in_again(oidc)) == owner.email


def test_an_identity_of_someone_else_is_not_linked_to_the_signed_in_user(
    oidc: FakeOIDCProvider, owner: User, other_user: User
) -> None:
    _, secret = api_key_create(user=other_user, name="other's")
    oidc.identity(sub="other-sso", email=other_user.email, email_verified=True)
    client = Client()
    client.force_login(owner)
    response = callback(client, authorize(start_process(client, "connect")))
    assert response.status_code == 302
    assert not SocialAccount.objects.exists()
    other_user.refresh_from_db()
    assert other_user.check_password(PASSWORD)
    assert APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=secret).status_code == 200
    assert signed_in_as(client) == owner.email


def start_process(client: Client, process: str) -> str:
    response = client.post(f"{LOGIN_URL}?process={process}")
    assert response.status_code == 302
    return response["Location"]


@pytest.mark.parametrize(
    ("provider", "authorize_url", "scope"),
    [
        ("github", "https://github.com/login/oauth/authorize", "read:user user:email"),
        ("google", "https://accounts.google.com/o/oauth2/v2/auth", "profile email"),
    ],
)
def test_github_and_google_buttons_lead_to_their_authorize_pages(
    settings: Any, provider: str, authorize_url: str, scope: str
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        provider: {"APPS": [{"client_id": f"{provider}-id", "secret": "s", "key": ""}], "SCOPE": scope.split()}
    }
    client = Client()
    assert f'action="/oauth/{provider}/login/?process=login"' in client.get("/login/").content.decode()
    response = client.post(f"/oauth/{provider}/login/?process=login")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize_url
    query = parse_qs(location.query)
    assert query["client_id"] == [f"{provider}-id"]
    assert set(query["scope"][0].split()) == set(scope.split())
    assert query["redirect_uri"] == [f"http://testserver/oauth/{provider}/login/callback/"]
    assert query["state"][0]


def test_the_profile_still_shows_when_a_linked_provider_is_no_longer_configured(
    oidc: FakeOIDCProvider, settings: Any
) -> None:
    oidc.identity(sub="frank", email="frank@example.com")
    client = Client()
    sign_in(client)
    settings.SOCIALACCOUNT_PROVIDERS = {}
    response = client.get("/profile/")
    assert response.status_code == 200
    assert f"signs in with {PROVIDER_ID}" in response.content.decode()


def test_an_account_without_a_password_can_set_one_by_e_mail_and_then_get_a_jwt(oidc: FakeOIDCProvider) -> None:
    oidc.identity(sub="gina", email="gina@example.com")
    sign_in(Client())
    assert (
        APIClient().post(f"{V1}/auth/password/reset", {"email": "gina@example.com"}, format="json").status_code == 202
    )
    assert len(mail.outbox) == 1
    uid, token = link_parts(mail.outbox[0])
    new_password = "gina-sets-a-long-passphrase"
    confirmed = APIClient().post(
        f"{V1}/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": new_password}, format="json"
    )
    assert confirmed.status_code == 200
    login = APIClient().post(f"{V1}/auth/login", {"email": "gina@example.com", "password": new_password}, format="json")
    assert login.status_code == 200
    access = login.json()["access"]
    assert APIClient().get(f"{V1}/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}").json()["email"] == "gina@example.com"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_a_next_address_off_the_site_is_ignored(oidc: FakeOIDCProvider, next_url: str) -> None:
    oidc.identity(sub="hal", email="hal@example.com")
    client = Client()
    response = callback(client, authorize(start(client, next_url=quote(next_url, safe=""))))
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_as(client) == "hal@example.com"
