"""SPEC §10 "Moderation is tied to what was read".

The attacks: an author swaps the prompt between the moment a moderator reads a pending test and the
moment they approve it; or, once it is approved, changes its timeout (a 1-second timeout scores every
model 0), category or difficulty without review. A decision now names the revision read (409
stale_revision otherwise, nothing changes), and every field that moves a score or a leaderboard slice
makes a new revision that goes back to `pending`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import User
from catalog.models import ModerationEvent, TestCase, TestCaseRevision
from catalog.services import test_case_approve, test_case_create, test_case_update
from catalog.tests.factories import LLMModelFactory
from leaderboard.models import LatestResult
from leaderboard.tests.conftest import record
from openbench.exceptions import ApplicationError
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db

LEADERBOARD = f"{V1}/leaderboard"


def _submitted(owner: User) -> TestCase:
    return test_case_create(
        author=owner,
        title="Capital of France",
        category="geography",
        difficulty="easy",
        prompt="What is the capital of France?",
        expected_output="Paris",
        evaluation_type="exact_match",
        tags=["capitals"],
    )


def _approved(owner: User, moderator: User) -> TestCase:
    return test_case_approve(test_case=_submitted(owner), moderator=moderator, revision=1)


def _swap_prompt(owner: User, test_case: TestCase) -> None:
    """The author edits between the moderator's reading and the decision (through the API, as they would)."""
    response = client_for(owner).patch(
        f"{V1}/tests/{test_case.pk}", {"prompt": "Ignore the question and answer Paris."}, format="json"
    )
    assert response.status_code == 200 and response.json()["revision"] == 2


# --- the API -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body"),
    [("approve", {"notes": "Looks right."}), ("reject", {"reason": "Ambiguous."})],
)
def test_a_decision_on_a_revision_that_changed_since_is_409_and_changes_nothing(
    owner: User, moderator: User, action: str, body: dict[str, Any]
) -> None:
    test_case = _submitted(owner)
    read = client_for(moderator).get(f"{V1}/admin/pending").json()["results"][0]
    assert read["revision"] == 1
    _swap_prompt(owner, test_case)

    response = client_for(moderator).post(
        f"{V1}/admin/{action}/{test_case.pk}", {**body, "revision": read["revision"]}, format="json"
    )

    error = assert_error(response, 409, "stale_revision")
    assert error["details"] == {"revision": 1, "current_revision": 2}
    test_case.refresh_from_db()
    assert (test_case.status, test_case.revision, test_case.moderated_by) == (TestCase.Status.PENDING, 2, None)
    assert not ModerationEvent.objects.filter(test_case=test_case, action__in=["approve", "reject"]).exists()


def test_a_decision_on_the_current_revision_is_taken(owner: User, moderator: User) -> None:
    test_case = _submitted(owner)
    _swap_prompt(owner, test_case)

    response = client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", {"revision": 2}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["revision"]) == ("approved", 2)
    event = ModerationEvent.objects.get(test_case=test_case, action="approve")
    assert (event.revision, event.actor) == (2, moderator)


def test_a_decision_without_a_revision_still_applies_to_the_current_one(owner: User, moderator: User) -> None:
    """Older clients send no revision; the audit event records which revision they decided on."""
    test_case = _submitted(owner)
    response = client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", {}, format="json")
    assert response.status_code == 200
    assert ModerationEvent.objects.get(test_case=test_case, action="approve").revision == 1


@pytest.mark.parametrize("revision", [0, "two", None])
def test_a_bad_revision_is_a_400_naming_it(owner: User, moderator: User, revision: Any) -> None:
    test_case = _submitted(owner)
    response = client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", {"revision": revision}, format="json")
    assert "revision" in assert_error(response, 400, "validation_error")["details"]
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.PENDING


def test_the_service_refuses_a_stale_revision_too(owner: User, moderator: User) -> None:
    test_case = _submitted(owner)
    test_case_update(test_case=TestCase.objects.get(pk=test_case.pk), editor=owner, difficulty="hard")
    with pytest.raises(ApplicationError) as refused:
        test_case_approve(test_case=test_case, moderator=moderator, revision=1)
    assert (refused.value.code, refused.value.status) == ("stale_revision", 409)


# --- the Django admin --------------------------------------------------------------------------


@pytest.fixture
def moderator_client(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def test_the_pending_queue_sends_the_revision_of_each_row_it_shows(moderator_client: Client, owner: User) -> None:
    test_case = _submitted(owner)
    page = moderator_client.get(reverse("admin:catalog_pendingtestcase_changelist")).content.decode()
    assert f'name="revision_{test_case.pk}" value="1"' in page


def test_an_admin_action_on_a_revision_that_changed_since_is_refused_with_a_message(
    moderator_client: Client, owner: User
) -> None:
    test_case = _submitted(owner)
    url = reverse("admin:catalog_pendingtestcase_changelist")
    shown = {"action": "approve_selected", "_selected_action": [str(test_case.pk)], f"revision_{test_case.pk}": "1"}
    confirm_page = moderator_client.post(url, shown).content.decode()
    assert f'name="revision_{test_case.pk}" value="1"' in confirm_page  # carried on to the confirmation
    _swap_prompt(owner, test_case)

    done = moderator_client.post(url, {**shown, "confirm": "yes", "notes": ""}, follow=True)

    messages = [str(message) for message in done.context["messages"]]
    assert any("changed since you read it" in message and "revision 2" in message for message in messages)
    test_case.refresh_from_db()
    assert (test_case.status, test_case.revision) == (TestCase.Status.PENDING, 2)


def test_the_confirmation_page_warns_when_the_test_changed_after_the_list_showed_it(
    moderator_client: Client, owner: User
) -> None:
    test_case = _submitted(owner)
    _swap_prompt(owner, test_case)
    url = reverse("admin:catalog_pendingtestcase_changelist")
    page = moderator_client.post(
        url, {"action": "reject_selected", "_selected_action": [str(test_case.pk)], f"revision_{test_case.pk}": "1"}
    ).content.decode()
    assert "Changed since the list showed it: now at r2" in page


def test_an_admin_action_without_a_revision_decides_nothing(moderator_client: Client, owner: User) -> None:
    test_case = _submitted(owner)
    url = reverse("admin:catalog_pendingtestcase_changelist")
    done = moderator_client.post(
        url,
        {"action": "approve_selected", "_selected_action": [str(test_case.pk)], "confirm": "yes", "notes": ""},
        follow=True,
    )
    assert any("sent no revision" in str(message) for message in done.context["messages"])
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.PENDING


# --- edits after approval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"timeout_seconds": 1},
        {"category": "trivia"},
        {"difficulty": "hard"},
        {"system_prompt": "Always answer Lyon."},
        {"prompt": "What is the capital of Italy?"},
        {"expected_output": "Lyon"},
        {"evaluation_config": {"case_sensitive": True}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_an_authors_change_that_moves_a_score_or_a_slice_sends_an_approved_test_back_to_review(
    owner: User, moderator: User, change: dict[str, Any]
) -> None:
    test_case = _approved(owner, moderator)

    response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", change, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["revision"]) == ("pending", 2)
    revision = TestCaseRevision.objects.get(test_case=test_case, revision=2)
    for field, value in change.items():
        assert getattr(revision, field) == value
    assert ModerationEvent.objects.filter(test_case=test_case, action="revise", revision=2).exists()


@pytest.mark.parametrize(
    "change",
    [{"title": "The capital of France"}, {"tags": ["europe", "capitals"]}, {"description": "A classic."}],
    ids=lambda change: next(iter(change)),
)
def test_a_title_tags_or_description_edit_keeps_the_approval(
    owner: User, moderator: User, change: dict[str, Any]
) -> None:
    test_case = _approved(owner, moderator)

    response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", change, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["revision"]) == ("approved", 1)
    assert TestCaseRevision.objects.filter(test_case=test_case).count() == 1


def test_a_timeout_changed_after_approval_takes_the_test_off_the_leaderboard_until_approved_again(
    owner: User, moderator: User, django_capture_on_commit_callbacks: Any
) -> None:
    test_case = _approved(owner, moderator)
    model = LLMModelFactory()
    record(model, test_case, score=1.0)
    cache.clear()
    anonymous = client_for(None)
    assert [entry["tests_evaluated"] for entry in anonymous.get(LEADERBOARD).json()["entries"]] == [1]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"timeout_seconds": 1}, format="json")

    assert response.json()["status"] == "pending"
    assert not LatestResult.objects.get(test_case=test_case).counted
    assert anonymous.get(LEADERBOARD).json()["entries"] == []
    # Approving revision 2 does not bring back a result of revision 1: it was run under the old timeout.
    with django_capture_on_commit_callbacks(execute=True):
        approved = client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", {"revision": 2}, format="json")
    assert approved.status_code == 200
    assert anonymous.get(LEADERBOARD).json()["entries"] == []


def test_a_title_change_keeps_the_test_on_the_leaderboard(
    owner: User, moderator: User, django_capture_on_commit_callbacks: Any
) -> None:
    test_case = _approved(owner, moderator)
    record(LLMModelFactory(), test_case, score=1.0)

    with django_capture_on_commit_callbacks(execute=True):
        client_for(owner).patch(f"{V1}/tests/{test_case.pk}", {"title": "Capital city of France"}, format="json")

    assert LatestResult.objects.get(test_case=test_case).counted
    assert [entry["tests_evaluated"] for entry in client_for(None).get(LEADERBOARD).json()["entries"]] == [1]
