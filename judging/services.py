"""Labelling results: one decision path for the API, the admin actions and the test page's buttons."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from evaluations.models import TestResult
from judging.models import LabelEvent, ResultLabel
from openbench.exceptions import ApplicationError

NOTE_MAX_LENGTH = 2000


@dataclass(frozen=True)
class LabelOutcome:
    """The label after the decision, and whether this call created it (first label) or changed it."""

    label: ResultLabel
    created: bool
    changed: bool


@transaction.atomic
def result_label(*, result: TestResult, moderator: User, is_correct: bool, note: str = "") -> LabelOutcome:
    """Record a moderator's verdict on a scored result, auditing every change (old → new) as a LabelEvent.

    Labelling again with the same verdict and note changes nothing and records nothing. Only results with
    a verdict to compare (completed, is_correct set) can be labelled (409 `not_scored` otherwise).
    """
    if not moderator.is_moderator:
        raise ApplicationError("Only moderators may label results.", code="permission_denied", status=403)
    # The result's row lock serialises two moderators labelling the same result at once.
    locked = TestResult.objects.select_for_update().only("pk", "status", "is_correct").get(pk=result.pk)
    if locked.status != TestResult.Status.COMPLETED or locked.is_correct is None:
        raise ApplicationError(
            "Only a scored result (completed, with a verdict) can be labelled.", code="not_scored", status=409
        )
    note = note.strip()[:NOTE_MAX_LENGTH]
    label = ResultLabel.objects.filter(result_id=result.pk).first()
    if label is not None and label.is_correct == is_correct and label.note == note:
        return LabelOutcome(label=label, created=False, changed=False)
    old = None if label is None else label.is_correct
    if label is None:
        label = ResultLabel.objects.create(result_id=result.pk, is_correct=is_correct, note=note, labelled_by=moderator)
    else:
        label.is_correct, label.note, label.labelled_by = is_correct, note, moderator
        label.save(update_fields=["is_correct", "note", "labelled_by", "updated_at"])
    LabelEvent.objects.create(
        result_id=result.pk, actor=moderator, old_is_correct=old, new_is_correct=is_correct, note=note
    )
    return LabelOutcome(label=label, created=old is None, changed=True)
