"""Sign-in with GitHub, Google or an OpenID Connect provider (SPEC §14): what django-allauth asks the
project to decide. allauth runs the OAuth/OIDC handshake; this adapter decides who the person is here.

* A provider identity seen before signs into its account.
* Otherwise the address the provider gives must be one it says is VERIFIED; an unverified or missing
  address is refused with a page saying why (409 / 400), so it can neither take over an existing account
  nor claim an address for someone who might sign in with it later.
* A verified address that an account already has signs into that account and links the identity to it
  (SOCIALACCOUNT_EMAIL_AUTHENTICATION + _AUTO_CONNECT). When nobody had proven that address before (our
  sign-up sends no confirmation e-mail), allauth clears the account's password, which also ends its
  sessions and JWTs, and we revoke its API keys: whoever registered someone else's address in advance
  loses every way into the account.
* A verified address no account has creates one, as our sign-up would (the `user` role, usable at once,
  counted by the same per-address sign-up throttle), with no password: its owner signs in with the provider.
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.models import User
from accounts.services import api_keys_revoke_all

REFUSED_TEMPLATE = "accounts/oauth_refused.html"


def refusal(
    request: HttpRequest, *, reason: str, provider: str, status: int, email: str = "", taken: bool = False
) -> HttpResponse:
    """The page that ends a social sign-in we will not complete, saying why and what to do instead."""
    context = {"reason": reason, "provider": provider, "email": email, "taken": taken}
    return render(request, REFUSED_TEMPLATE, context, status=status)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's adapter with our account rules (module docstring)."""

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if sociallogin.state.get("process") in (AuthProcess.CONNECT, AuthProcess.REDIRECT):
            # A signed-in user linking an identity to their own account (allauth refuses one that is
            # linked, or whose verified address belongs, to someone else); nobody is signed in or created.
            return
        provider = sociallogin.provider.name
        if sociallogin.is_existing:
            if sociallogin.account.pk is None:
                self._linked_by_email(request, sociallogin, provider)
            return
        user = sociallogin.user
        email = str(getattr(user, "email", "") or "").lower()
        if not email:
            raise ImmediateHttpResponse(refusal(request, reason="no_email", provider=provider, status=400))
        verified = {address.email.lower() for address in sociallogin.email_addresses if address.verified}
        if email not in verified:
            taken = User.objects.filter(email__iexact=email).exists()
            status = 409 if taken else 400
            raise ImmediateHttpResponse(
                refusal(request, reason="email_unverified", provider=provider, status=status, email=email, taken=taken)
            )

    def _linked_by_email(self, request: HttpRequest, sociallogin: SocialLogin, provider: str) -> None:
        """An existing account reached by a verified address, linked now. allauth clears its password
        right after this unless the address had been proven here before; its API keys go the same way."""
        user = sociallogin.user
        assert isinstance(user, User)
        # Set by SocialLogin.lookup(): the address that found the account (allauth 65's attribute).
        email = getattr(sociallogin, "_did_authenticate_by_email", None) or user.email
        proven = EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()
        note = ""
        if not proven:
            revoked = api_keys_revoke_all(user=user)
            note = (
                " Nobody had proven this address here before, so the account's password was cleared"
                + (f" and its {revoked} API key{'s' if revoked != 1 else ''} revoked" if revoked else "")
                + "."
            )
        messages.info(
            request,
            f"Your {provider} account is now linked to {user.email}; sign in with {provider} from now on.{note} "
            "For the API, create an API key on your profile page (or set a password by e-mail).",
        )

    def get_connect_redirect_url(self, request: HttpRequest, socialaccount: Any) -> str:
        return reverse("accounts:profile")

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # New accounts from a provider count against the same per-address sign-up rate as /register/.
        from openbench.api.throttles import RegisterThrottle  # late: DRF settings import it while DRF loads

        throttle = RegisterThrottle()
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            response = refusal(request, reason="throttled", provider=sociallogin.provider.name, status=429)
            response["Retry-After"] = str(max(1, int(throttle.wait() or 1)))
            raise ImmediateHttpResponse(response)
        return True

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict[str, Any]) -> User:
        """An unsaved user from the provider's profile: the address lower-case as our sign-up stores it,
        the provider's name as the display name, the default `user` role."""
        user = sociallogin.user
        assert isinstance(user, User)
        email = str(data.get("email") or "").strip()
        user.email = User.objects.normalize_email(email).lower() if email else ""
        full_name = " ".join(part for part in (data.get("first_name"), data.get("last_name")) if part)
        name = data.get("name") or full_name or data.get("username") or ""
        user.display_name = str(name).strip()[: User._meta.get_field("display_name").max_length or 150]
        user.role = User.Role.USER
        user.apply_role_flags()
        return user
