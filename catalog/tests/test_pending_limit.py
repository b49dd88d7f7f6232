"""Open sign-up limits on writing tests (SPEC §10): a contributor may have at most TESTS_PENDING_MAX_PER_USER tests
awaiting moderation, and creates and edits have their own budget (`test_write`): a new account must not flood the
moderators' queue, nor the database (each test and each edit stores up to a 1 MB prompt)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from catalog.models import TestCase
from catalog.services import test_case_approve, test_case_archive
from catalog.tests.factories import TestCaseFactory
from catalog.tests.test_api_tests import new_test_payload
from catalog.tests.test_schema_refs import form_data
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_of_two(settings: Any) -> None:
    settings.TESTS_PENDING_MAX_PER_USER = 2


def _create(user: User, title: str) -> Any:
    return client_for(user).post(f"{V1}/tests", new_test_payload(title=title), format="json")


@pytest.mark.usefixtures("limit_of_two")
def test_a_contributor_past_the_pending_limit_is_403_and_nothing_is_created(owner: User) -> None:
    for title in ("one", "two"):
        assert _create(owner, title).status_code == 201

    error = assert_error(_create(owner, "three"), 403, "pending_limit")

    assert error["details"] == {"pending": 2, "max_pending": 2}
    assert "awaiting moderation" in error["message"]
    assert not TestCase.objects.filter(title="three").exists()


@pytest.mark.usefixtures("limit_of_two")
def test_a_decision_or_a_delete_makes_room(owner: User, moderator: User) -> None:
    first, second = (TestCase.objects.get(pk=_create(owner, title).json()["id"]) for title in ("one", "two"))

    test_case_approve(test_case=first, moderator=moderator)
    assert _create(owner, "three").status_code == 201
    assert_error(_create(owner, "four"), 403, "pending_limit")

    test_case_archive(test_case=second, actor=owner)
    assert _create(owner, "four").status_code == 201


@pytest.mark.usefixtures("limit_of_two")
def test_the_limit_is_each_contributors_own_and_moderators_have_none(
    owner: User, other_user: User, moderator: User
) -> None:
    TestCaseFactory.create_batch(2, created_by=owner, status=TestCase.Status.PENDING)

    assert _create(other_user, "theirs").status_code == 201
    for title in ("m1", "m2", "m3"):  # moderators import and approve in bulk
        assert _create(moderator, title).status_code == 201
    assert_error(_create(owner, "mine"), 403, "pending_limit")


def test_zero_means_no_limit(owner: User, settings: Any) -> None:
    settings.TESTS_PENDING_MAX_PER_USER = 0
    TestCaseFactory.create_batch(3, created_by=owner, status=TestCase.Status.PENDING)

    assert _create(owner, "fourth").status_code == 201


@pytest.mark.usefixtures("limit_of_two")
def test_the_page_form_says_so_on_the_form(client: Client, owner: User) -> None:
    TestCaseFactory.create_batch(2, created_by=owner, status=TestCase.Status.PENDING)
    client.force_login(owner)
    fields = {**form_data({"type": "object"}), "title": "from the page"}

    response = client.post(reverse("catalog:test-create"), fields)

    assert response.status_code == 400
    assert any("awaiting moderation" in error for error in response.context["form"].non_field_errors())
    assert not TestCase.objects.filter(title="from the page").exists()
    # Below the limit the same form creates the test: the refusal was the limit's.
    TestCase.objects.filter(created_by=owner).update(status=TestCase.Status.APPROVED)
    assert client.post(reverse("catalog:test-create"), fields).status_code == 302


@pytest.mark.usefixtures("limit_of_two")
def test_editing_a_decided_test_back_into_the_queue_counts_too(owner: User, moderator: User) -> None:
    rejected = TestCaseFactory(created_by=owner, status=TestCase.Status.REJECTED)
    TestCaseFactory.create_batch(2, created_by=owner, status=TestCase.Status.PENDING)

    edit = client_for(owner).patch(f"{V1}/tests/{rejected.pk}", {"prompt": "A new prompt."}, format="json")

    assert_error(edit, 403, "pending_limit")
    rejected.refresh_from_db()
    assert (rejected.status, rejected.revision) == (TestCase.Status.REJECTED, 1)
    # A title is not reviewed: that edit keeps the decision and is not counted.
    title = client_for(owner).patch(f"{V1}/tests/{rejected.pk}", {"title": "A new title"}, format="json")
    assert title.status_code == 200, title.content
    # A moderator's edit is never refused.
    assert (
        client_for(moderator).patch(f"{V1}/tests/{rejected.pk}", {"prompt": "Fixed."}, format="json").status_code == 200
    )


# -- the test_write budget -------------------------------------------------------------------------------------
@pytest.fixture
def two_writes_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    from openbench.api.throttles import TestWriteThrottle

    monkeypatch.setattr(TestWriteThrottle, "THROTTLE_RATES", {"test_write": "2/hour"})


@pytest.mark.usefixtures("two_writes_an_hour")
def test_creates_and_edits_share_a_budget_and_reads_do_not_count(owner: User) -> None:
    created = _create(owner, "one")
    assert created.status_code == 201
    test_id = created.json()["id"]
    edit = client_for(owner).patch(f"{V1}/tests/{test_id}", {"prompt": "Another prompt."}, format="json")
    assert edit.status_code == 200, edit.content
    for _ in range(3):
        assert client_for(owner).get(f"{V1}/tests/{test_id}").status_code == 200

    error = assert_error(_create(owner, "two"), 429)

    assert error["code"] == "throttled"
    assert_error(client_for(owner).patch(f"{V1}/tests/{test_id}", {"prompt": "Again."}, format="json"), 429)
    assert not TestCase.objects.filter(title="two").exists()


@pytest.mark.usefixtures("two_writes_an_hour")
def test_moderators_writes_are_not_counted(moderator: User) -> None:
    for title in ("m1", "m2", "m3"):
        assert _create(moderator, title).status_code == 201


@pytest.mark.usefixtures("two_writes_an_hour")
def test_the_pages_share_the_budget_and_say_so_on_the_form(client: Client, owner: User) -> None:
    client.force_login(owner)
    for title in ("one", "two"):
        assert _create(owner, title).status_code == 201
    fields = {**form_data({"type": "object"}), "title": "from the page"}

    response = client.post(reverse("catalog:test-create"), fields)

    assert response.status_code == 400
    assert any("saved many tests recently" in error for error in response.context["form"].non_field_errors())
    assert not TestCase.objects.filter(title="from the page").exists()
