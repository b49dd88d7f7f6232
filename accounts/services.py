"""Writes on users and API keys."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterator
from urllib.parse import urlsplit

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from accounts.models import ApiKey, User
from openbench.exceptions import ApplicationError

MODERATORS_GROUP = "moderators"
# What moderation needs in the admin, and nothing more (migration 0002/0003 grant the same).
MODERATOR_PERMISSIONS = (
    ("catalog", "view_testcase"),
    ("catalog", "change_testcase"),
    ("catalog", "view_pendingtestcase"),
    ("catalog", "change_pendingtestcase"),
    ("catalog", "view_testcaserevision"),
    ("catalog", "view_moderationevent"),
    ("catalog", "view_llmmodel"),
    ("catalog", "view_tag"),
    ("evaluations", "view_execution"),
    ("evaluations", "view_testresult"),
    ("arena", "view_battle"),
    ("arena", "view_vote"),
    ("arena", "change_vote"),
    ("judging", "view_resultlabel"),
    ("judging", "view_labelevent"),
)
API_KEY_PREFIX = "ob_"


@transaction.atomic
def user_create(*, email: str, password: str, display_name: str = "", role: str = User.Role.USER) -> User:
    """Register a user after Django's password validators approve the password.

    A taken address is a 409 (SPEC §7): an account is usable the moment it is created (no e-mail
    confirmation step), so an answer that hid the difference could not also hand over the account.
    Probing is slowed by the `register` throttle instead.
    """
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError("A user with this email already exists.", code="email_taken", status=409)
    validate_password(password, user=User(email=email, display_name=display_name))
    user = User.objects.create_user(email, password, display_name=display_name, role=role)
    _sync_role_groups(user)
    return user


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    """Change a role and everything that follows from it: admin flags and the moderators group."""
    if role not in User.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", code="invalid_role")
    user.role = role
    user.apply_role_flags()
    user.save(update_fields=["role", "is_staff", "is_superuser", "updated_at"])
    _sync_role_groups(user)
    return user


@transaction.atomic
def user_password_change(*, user: User, new_password: str) -> User:
    """Set a new password once Django's validators approve it.

    Every access and refresh token issued before stops working: tokens carry a digest of the password
    hash (SIMPLE_JWT CHECK_REVOKE_TOKEN), checked on each request and on refresh. Other browser
    sessions end too (Django checks the session's password hash). API keys are separate credentials
    and stay valid until revoked.
    """
    try:
        validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    return user


class _PasswordResetForm(PasswordResetForm):
    """Django's form, which also mails an active account with no usable password: one that signs in with
    GitHub, Google or OIDC (or whose password linking one cleared) may set a password by proving its
    mailbox, as any account may; Django leaves them out because elsewhere such accounts often live in
    another system (LDAP), not here."""

    def get_users(self, email: str) -> Iterator[User]:
        wanted = unicodedata.normalize("NFKC", email).casefold()
        # Compare like Django does after the database lookup, so Unicode look-alikes never match.
        for user in User.objects.filter(email__iexact=email, is_active=True):
            if unicodedata.normalize("NFKC", user.email).casefold() == wanted:
                yield user


def password_reset_send(*, email: str, request: HttpRequest) -> None:
    """E-mail a password-reset link if an active account has this address, with a password or not; do
    nothing otherwise. Callers answer the same either way, so the answer never tells.

    The link's origin is SITE_URL when set, else the request's host (checked by ALLOWED_HOSTS).
    """
    form = _PasswordResetForm(data={"email": email})
    if not form.is_valid():
        return
    site = urlsplit(settings.SITE_URL) if settings.SITE_URL else None
    form.save(
        domain_override=site.netloc if site else None,
        use_https=site.scheme == "https" if site else request.is_secure(),
        request=request,
        subject_template_name="accounts/email/password_reset_subject.txt",
        email_template_name="accounts/email/password_reset.txt",
        from_email=settings.DEFAULT_FROM_EMAIL,
    )


def password_reset_user(*, uid: str, token: str) -> User | None:
    """The user a reset link (base64 user id and Django's token) was made for, if it is still valid."""
    try:
        user = User.objects.filter(pk=force_str(urlsafe_base64_decode(uid))).first()
    except (ValueError, TypeError, OverflowError, ValidationError):
        return None
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set the password a reset e-mail allowed; a link works once (the token covers the password hash).

    Proving the mailbox also lifts a log-in lock on the account, so its owner can use the new
    password at once.
    """
    user = password_reset_user(uid=uid, token=token)
    if user is None:
        raise ApplicationError(
            "This password-reset link is invalid or has expired.",
            code="invalid_token",
            details={"token": ["Invalid or expired."]},
        )
    user_password_change(user=user, new_password=new_password)
    login_lock_clear(user=user)
    return user


def login_lock_clear(*, user: User) -> None:
    """Forget the failed log-ins recorded against this account (django-axes)."""
    axes_reset(username=user.email)


def moderators_group() -> Group:
    """The moderators group with its permissions; recreated if someone deleted or emptied it."""
    group, _ = Group.objects.get_or_create(name=MODERATORS_GROUP)
    if not group.permissions.exists():
        wanted = Q()
        for app_label, codename in MODERATOR_PERMISSIONS:
            wanted |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.filter(wanted))
    return group


def _sync_role_groups(user: User) -> None:
    group = moderators_group()
    if user.role == User.Role.MODERATOR:
        user.groups.add(group)
    else:
        user.groups.remove(group)


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown this once and never stored."""
    name = name.strip()
    if not name:
        raise ApplicationError(
            "An API key needs a name.", code="invalid", details={"name": ["This field is required."]}
        )
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user, name=name[:100], prefix=secret[: ApiKey.PREFIX_LENGTH], key_hash=ApiKey.hash_secret(secret)
    )
    return key, secret


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_keys_revoke_all(*, user: User) -> int:
    """Revoke every active key of a user (an account taken back by its address's owner); how many."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The active key for a secret, with its last use recorded; None when unknown or revoked."""
    key = ApiKey.objects.active().select_related("user").filter(key_hash=ApiKey.hash_secret(secret)).first()
    if key is None:
        return None
    now = timezone.now()
    # Record use at most once a minute: a busy key would otherwise write on every request.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
