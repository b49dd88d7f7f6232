"""Writes on users and API keys."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

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
)
API_KEY_PREFIX = "ob_"


@transaction.atomic
def user_create(*, email: str, password: str, display_name: str = "", role: str = User.Role.USER) -> User:
    """Register a user after Django's password validators approve the password."""
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
