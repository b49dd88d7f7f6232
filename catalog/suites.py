"""Writes on suites (SPEC §12) and the one rule for which tests a suite runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError, QuerySet

from accounts.models import User
from catalog.models import Suite, TestCase
from catalog.services import _tags_from_names
from openbench.exceptions import ApplicationError

SUITE_EDITABLE_FIELDS = ("name", "description", "category")
# What a suite selects; changing any of it is a new version (runs record the version they ran).
SUITE_DEFINITION_FIELDS = ("test_ids", "category", "tags")


def suite_tests(*, suite: Suite, user: Any = None) -> QuerySet[TestCase]:
    """The approved tests a run of `suite` runs now, oldest first. With a user, only the tests that user
    may see (a reader of the suite learns nothing about tests hidden from them); without one (the platform,
    a schedule), every approved test the suite selects. A query, for a page to count and slice."""
    tests = TestCase.objects.approved() if user is None else TestCase.objects.visible_to(user).approved()
    return tests.in_suite(suite).order_by("created_at", "id")


def suite_resolve_tests(*, suite: Suite, user: Any = None) -> list[TestCase]:
    """`suite_tests`, read: what a run starts."""
    return list(suite_tests(suite=suite, user=user))


def empty_suite_error(field: str) -> ApplicationError:
    """A suite that resolves to no approved test (for whoever runs it): 400 `empty_suite` naming `field`."""
    return ApplicationError(
        "This suite has no approved tests to run.",
        code="empty_suite",
        details={field: ["The suite resolves to no approved test."]},
    )


def _explicit_tests(test_ids: Sequence[UUID | str], *, user: User) -> list[TestCase]:
    """The tests named by id; an id the editor may not see is refused like an unknown one (400 `test_ids`)."""
    wanted = list(dict.fromkeys(str(test_id) for test_id in test_ids))
    found = list(TestCase.objects.visible_to(user).filter(pk__in=wanted))
    missing = sorted(set(wanted) - {str(test.pk) for test in found})
    if missing:
        raise ApplicationError(
            f"Unknown test ids: {', '.join(missing[:5])}.",
            details={"test_ids": [f"Unknown test {test_id}." for test_id in missing[:20]]},
        )
    return found


def suite_definition(suite: Suite) -> tuple[str, set[Any], set[Any]]:
    """What the suite selects, to compare before and after an edit."""
    return (suite.category, set(suite.tests.values_list("pk", flat=True)), set(suite.tags.values_list("pk", flat=True)))


def suite_bump_version_if_changed(*, suite: Suite, before: tuple[str, set[Any], set[Any]]) -> Suite:
    """A new version when what the suite selects differs from `before` (the API and the admin alike)."""
    if suite_definition(suite) != before:
        Suite.objects.filter(pk=suite.pk).update(version=F("version") + 1)
        suite.refresh_from_db(fields=["version", "updated_at"])
    return suite


def _refuse_unknown_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(SUITE_EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")


def _save_named(suite: Suite) -> None:
    """Save; a name another editor took between full_clean and this insert is the same 400 as a name taken
    before (the unique constraint decides, full_clean only asked first)."""
    try:
        with transaction.atomic():
            suite.save()
    except IntegrityError as error:
        if Suite.objects.exclude(pk=suite.pk).filter(name=suite.name).exists():
            raise ValidationError({"name": ["Suite with this Name already exists."]}) from error
        raise


@transaction.atomic
def suite_create(
    *, created_by: User, test_ids: Sequence[UUID | str] = (), tags: Iterable[str] = (), **fields: Any
) -> Suite:
    """Create a suite at version 1; its tests are resolved when it runs."""
    _refuse_unknown_fields(fields)
    suite = Suite(created_by=created_by, **fields)
    suite.full_clean()
    _save_named(suite)
    suite.tests.set(_explicit_tests(test_ids, user=created_by))
    suite.tags.set(_tags_from_names(tags))
    return suite


@transaction.atomic
def suite_update(
    *,
    suite: Suite,
    editor: User,
    test_ids: Sequence[UUID | str] | None = None,
    tags: Iterable[str] | None = None,
    **fields: Any,
) -> Suite:
    """Apply an edit; a change of what the suite selects (tests, category, tags) bumps its version."""
    _refuse_unknown_fields(fields)
    # Lock the row so two concurrent edits each bump the version.
    Suite.objects.select_for_update().filter(pk=suite.pk).values_list("pk").first()
    suite.refresh_from_db()
    before = suite_definition(suite)
    for name, value in fields.items():
        setattr(suite, name, value)
    # Not created_by: it is empty once the creator's account is deleted (SET_NULL), and an edit never sets it.
    suite.full_clean(exclude=["created_by"])
    _save_named(suite)
    if test_ids is not None:
        suite.tests.set(_explicit_tests(test_ids, user=editor))
    if tags is not None:
        suite.tags.set(_tags_from_names(tags))
    return suite_bump_version_if_changed(suite=suite, before=before)


def suite_delete(*, suite: Suite) -> None:
    """Delete a suite that nothing refers to; one with schedules or runs is kept (409 `suite_in_use`)."""
    try:
        suite.delete()
    except ProtectedError as error:
        raise ApplicationError(
            "This suite has schedules or runs; delete those first.", code="suite_in_use", status=409
        ) from error
