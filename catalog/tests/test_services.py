"""Test-case lifecycle: creation, revisions, moderation decisions and their audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from catalog.models import ModerationEvent, TestCase, TestCaseRevision
from catalog.services import (
    test_case_approve,
    test_case_archive,
    test_case_create,
    test_case_reject,
    test_case_update,
)
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

FIELDS = {
    "title": "Capital of Peru",
    "category": "geography",
    "prompt": "What is the capital of Peru?",
    "expected_output": "Lima",
    "evaluation_type": "exact_match",
}


def _approved(owner: Any, moderator: Any) -> TestCase:
    return test_case_approve(test_case=test_case_create(author=owner, **FIELDS), moderator=moderator)


def test_a_new_test_is_pending_with_its_first_revision_and_a_submit_event(owner: Any) -> None:
    test_case = test_case_create(author=owner, tags=["Capitals", "south america", "capitals"], **FIELDS)
    assert test_case.status == TestCase.Status.PENDING and test_case.revision == 1
    assert sorted(test_case.tags.values_list("name", flat=True)) == ["capitals", "south-america"]
    assert TestCaseRevision.objects.get(test_case=test_case).prompt == FIELDS["prompt"]
    event = ModerationEvent.objects.get(test_case=test_case)
    assert (event.action, event.actor, event.to_status) == ("submit", owner, "pending")


def test_bad_input_saves_nothing(owner: Any) -> None:
    with pytest.raises(ValidationError):
        test_case_create(author=owner, **{**FIELDS, "timeout_seconds": 999})
    with pytest.raises(ApplicationError, match="Unknown fields"):
        test_case_create(author=owner, status="approved", **FIELDS)
    assert not TestCase.objects.exists()


def test_approval_records_who_when_and_notes(owner: Any, moderator: Any) -> None:
    test_case = test_case_approve(
        test_case=test_case_create(author=owner, **FIELDS), moderator=moderator, notes="Clear and unambiguous."
    )
    assert test_case.status == TestCase.Status.APPROVED and test_case.approved_at is not None
    assert test_case.moderated_by == moderator
    event = test_case.moderation_events.get(action="approve")
    assert (event.actor, event.from_status, event.to_status, event.notes) == (
        moderator,
        "pending",
        "approved",
        "Clear and unambiguous.",
    )


def test_a_plain_user_cannot_approve(owner: Any, other_user: Any) -> None:
    with pytest.raises(ApplicationError) as excinfo:
        test_case_approve(test_case=test_case_create(author=owner, **FIELDS), moderator=other_user)
    assert excinfo.value.status == 403


def test_only_pending_tests_can_be_decided(owner: Any, moderator: Any) -> None:
    test_case = _approved(owner, moderator)
    with pytest.raises(ApplicationError) as excinfo:
        test_case_approve(test_case=test_case, moderator=moderator)
    assert excinfo.value.status == 409
    with pytest.raises(ApplicationError):
        test_case_reject(test_case=test_case, moderator=moderator, reason="late")


def test_a_decision_on_a_stale_copy_sees_the_stored_status(owner: Any, moderator: Any, admin_user: Any) -> None:
    # Two moderators open the same pending test; the second decision must not overwrite the first.
    stale = test_case_create(author=owner, **FIELDS)
    test_case_approve(test_case=TestCase.objects.get(pk=stale.pk), moderator=moderator)
    with pytest.raises(ApplicationError) as excinfo:
        test_case_reject(test_case=stale, moderator=admin_user, reason="Too late.")
    assert (excinfo.value.status, excinfo.value.code) == (409, "not_pending")
    assert "this one is approved" in excinfo.value.message
    stale.refresh_from_db()
    assert stale.status == TestCase.Status.APPROVED and stale.moderated_by == moderator
    assert list(stale.moderation_events.values_list("action", flat=True).order_by("created_at")) == [
        "submit",
        "approve",
    ]


def test_rejection_needs_a_reason(owner: Any, moderator: Any) -> None:
    test_case = test_case_create(author=owner, **FIELDS)
    with pytest.raises(ApplicationError, match="reason is required"):
        test_case_reject(test_case=test_case, moderator=moderator, reason="  ")
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.PENDING
    test_case_reject(test_case=test_case, moderator=moderator, reason="Ambiguous question.")
    assert test_case.moderation_events.get(action="reject").notes == "Ambiguous question."


def test_editing_what_is_scored_after_approval_makes_a_new_revision_back_in_review(owner: Any, moderator: Any) -> None:
    test_case = _approved(owner, moderator)
    test_case_update(test_case=test_case, editor=owner, expected_output="Lima, Peru")
    test_case.refresh_from_db()
    assert test_case.revision == 2 and test_case.status == TestCase.Status.PENDING and test_case.approved_at is None
    assert list(test_case.revisions.values_list("revision", flat=True)) == [2, 1]
    assert test_case.revisions.get(revision=1).expected_output == "Lima"
    assert test_case.moderation_events.filter(action="revise", from_status="approved").exists()


def test_editing_only_the_description_keeps_the_approval(owner: Any, moderator: Any) -> None:
    test_case = _approved(owner, moderator)
    test_case_update(test_case=test_case, editor=owner, description="Now with context.", tags=["peru"])
    test_case.refresh_from_db()
    assert test_case.revision == 1 and test_case.status == TestCase.Status.APPROVED
    assert list(test_case.tags.values_list("name", flat=True)) == ["peru"]


def test_archiving_keeps_the_row_and_records_it(owner: Any, moderator: Any) -> None:
    test_case = _approved(owner, moderator)
    test_case_archive(test_case=test_case, actor=owner)
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.ARCHIVED
    assert test_case not in TestCase.objects.live()
    with pytest.raises(ApplicationError) as excinfo:
        test_case_update(test_case=test_case, editor=owner, title="again")
    assert excinfo.value.status == 409
