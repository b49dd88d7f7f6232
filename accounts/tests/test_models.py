from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.models import ApiKey, User
from accounts.services import (
    MODERATORS_GROUP,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    user_create,
    user_set_role,
)
from accounts.tests.factories import UserFactory
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def test_users_log_in_by_email_and_start_as_plain_users() -> None:
    user = user_create(email="New.Person@Example.com", password="a-long-enough-passphrase")
    assert user.email == "new.person@example.com"
    assert user.role == User.Role.USER and not user.is_staff and not user.is_superuser
    assert user.check_password("a-long-enough-passphrase")


def test_it_refuses_a_second_account_for_the_same_email_in_any_case() -> None:
    user_create(email="a@example.com", password="a-long-enough-passphrase")
    with pytest.raises(ApplicationError) as excinfo:
        user_create(email="A@EXAMPLE.COM", password="a-long-enough-passphrase")
    assert excinfo.value.status == 409


def test_it_applies_djangos_password_validators() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        user_create(email="weak@example.com", password="123")
    assert not User.objects.filter(email="weak@example.com").exists()


def test_the_database_refuses_an_unknown_role() -> None:
    user = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(role="overlord")


@pytest.mark.parametrize(
    ("role", "staff", "superuser", "in_group"),
    [("user", False, False, False), ("moderator", True, False, True), ("admin", True, True, False)],
)
def test_a_role_decides_the_admin_flags_and_the_moderators_group(
    role: str, staff: bool, superuser: bool, in_group: bool
) -> None:
    user = user_set_role(user=UserFactory(), role=role)
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (staff, superuser)
    assert user.groups.filter(name=MODERATORS_GROUP).exists() is in_group


def test_demoting_a_moderator_takes_the_group_away() -> None:
    user = UserFactory(role=User.Role.MODERATOR)
    user_set_role(user=user, role=User.Role.USER)
    assert not user.groups.exists() and not user.is_staff


def test_an_unknown_role_is_refused_with_a_message() -> None:
    with pytest.raises(ApplicationError, match="Unknown role"):
        user_set_role(user=UserFactory(), role="overlord")


def test_api_keys_are_stored_only_as_a_hash_with_a_visible_prefix() -> None:
    key, secret = api_key_create(user=UserFactory(), name="ci")
    assert secret.startswith("ob_") and len(secret) > 40
    assert key.prefix == secret[: ApiKey.PREFIX_LENGTH]
    assert secret not in {key.key_hash, key.prefix}
    assert key.key_hash == ApiKey.hash_secret(secret)


def test_an_api_key_authenticates_until_revoked_and_records_its_last_use() -> None:
    key, secret = api_key_create(user=UserFactory(), name="ci")
    found = api_key_authenticate(secret=secret)
    assert found is not None and found.pk == key.pk
    key.refresh_from_db()
    assert key.last_used_at is not None
    api_key_revoke(api_key=key)
    assert api_key_authenticate(secret=secret) is None
    assert api_key_authenticate(secret="ob_not-a-key") is None


def test_an_api_key_needs_a_name() -> None:
    with pytest.raises(ApplicationError):
        api_key_create(user=UserFactory(), name="   ")


def test_the_moderators_group_exists_after_migrations() -> None:
    assert Group.objects.filter(name=MODERATORS_GROUP).exists()


def test_giving_the_moderator_role_restores_a_deleted_moderators_group() -> None:
    Group.objects.filter(name=MODERATORS_GROUP).delete()
    user = user_set_role(user=UserFactory(), role=User.Role.MODERATOR)
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    assert user.has_perm("catalog.change_pendingtestcase")
    assert not user.has_perm("catalog.add_llmmodel")
