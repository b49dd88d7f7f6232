"""Moderators labelling the same result at the same moment: one current label, an unbroken audit chain."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection

from accounts.models import User
from accounts.tests.factories import UserFactory
from catalog.tests.factories import LLMModelFactory
from judging.models import LabelEvent, ResultLabel
from judging.services import result_label
from judging.tests.factories import judged_result

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; threads need PostgreSQL"),
]


def test_concurrent_labels_leave_one_label_and_a_consistent_trail() -> None:
    result = judged_result(LLMModelFactory(name="judge-model"), verdict=True)
    moderators = [UserFactory(email=f"mod{i}@example.com", role=User.Role.MODERATOR) for i in range(6)]
    verdicts = [True, False, True, False, True, False]
    barrier = threading.Barrier(len(moderators))
    errors: list[BaseException] = []

    def label(moderator: User, verdict: bool) -> None:
        try:
            barrier.wait()
            result_label(result=result, moderator=moderator, is_correct=verdict)
        except BaseException as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=label, args=pair) for pair in zip(moderators, verdicts, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ResultLabel.objects.filter(result=result).count() == 1
    events = list(LabelEvent.objects.filter(result=result).order_by("created_at", "id"))
    # Each event starts from the verdict the one before left (the first from none), so no change was lost.
    assert events[0].old_is_correct is None
    for before, after in itertools.pairwise(events):
        assert after.old_is_correct == before.new_is_correct
    assert ResultLabel.objects.get(result=result).is_correct == events[-1].new_is_correct
