"""/api/v1/admin: the pending queue, approve, reject, stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from catalog.models import ModerationEvent, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


def pending(owner: User, **kwargs: object) -> TestCase:
    return TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING, **kwargs)


def test_moderators_see_pending_tests_oldest_first(moderator: User, owner: User) -> None:
    now = timezone.now()
    newer, older = pending(owner), pending(owner)
    TestCase.objects.filter(pk=older.pk).update(created_at=now - timedelta(days=2))
    TestCase.objects.filter(pk=newer.pk).update(created_at=now - timedelta(days=1))
    TestCaseFactory(created_by=owner)  # approved: not in the queue
    response = client_for(moderator).get(f"{V1}/admin/pending")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(older.pk), str(newer.pk)]


def test_the_pending_queue_query_count_is_fixed(moderator: User, owner: User, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        pending(owner)
    client = client_for(moderator)
    with django_assert_num_queries(3):  # count, page, tags
        assert client.get(f"{V1}/admin/pending").json()["count"] == 5


@pytest.mark.parametrize(("persona", "status"), [(None, 401), ("owner", 403), ("moderator", 200), ("admin_user", 200)])
def test_the_admin_endpoints_are_for_moderators(
    request: pytest.FixtureRequest, other_user: User, persona: str | None, status: int
) -> None:
    client = client_for(request.getfixturevalue(persona) if persona else None)
    test_case = pending(other_user)
    responses = [
        client.get(f"{V1}/admin/pending"),
        client.get(f"{V1}/admin/stats"),
        client.post(f"{V1}/admin/approve/{test_case.pk}", {}, format="json"),
    ]
    for response in responses:
        if status == 200:
            assert response.status_code == 200, response.content
        else:
            assert_error(response, status)
    test_case.refresh_from_db()
    assert test_case.status == (TestCase.Status.APPROVED if status == 200 else TestCase.Status.PENDING)


def test_a_moderator_approves_with_notes(moderator: User, owner: User) -> None:
    test_case = pending(owner)
    response = client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", {"notes": "Clear."}, format="json")
    body = response.json()
    assert body["status"] == "approved"
    assert body["moderated_by"] == str(moderator.pk)
    assert body["moderation_notes"] == "Clear."
    assert body["approved_at"] is not None
    assert ModerationEvent.objects.filter(test_case=test_case, action="approve", actor=moderator).exists()
    # Now public.
    assert APIClient().get(f"{V1}/tests/{test_case.pk}").status_code == 200


def test_approving_twice_is_409(moderator: User, owner: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    assert_error(client_for(moderator).post(f"{V1}/admin/approve/{test_case.pk}", format="json"), 409, "not_pending")


def test_a_moderator_rejects_with_a_reason(moderator: User, owner: User) -> None:
    test_case = pending(owner)
    response = client_for(moderator).post(
        f"{V1}/admin/reject/{test_case.pk}", {"reason": "Ambiguous answer."}, format="json"
    )
    assert response.json()["status"] == "rejected"
    assert response.json()["moderation_notes"] == "Ambiguous answer."
    # The author still sees it (and why); others do not.
    assert client_for(owner).get(f"{V1}/tests/{test_case.pk}").json()["status"] == "rejected"
    assert_error(APIClient().get(f"{V1}/tests/{test_case.pk}"), 404)


@pytest.mark.parametrize("payload", [{}, {"reason": ""}])
def test_a_rejection_needs_a_reason(moderator: User, owner: User, payload: dict[str, str]) -> None:
    test_case = pending(owner)
    error = assert_error(client_for(moderator).post(f"{V1}/admin/reject/{test_case.pk}", payload, format="json"), 400)
    assert "reason" in error["details"]
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.PENDING


def test_moderating_an_unknown_test_is_404(moderator: User) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_error(client_for(moderator).post(f"{V1}/admin/approve/{unknown}", format="json"), 404)
    assert_error(client_for(moderator).post(f"{V1}/admin/reject/{unknown}", {"reason": "x"}, format="json"), 404)
    assert_error(client_for(moderator).post(f"{V1}/admin/approve/not-a-uuid", format="json"), 404)


def test_the_pending_queue_is_read_only(moderator: User) -> None:
    assert_error(client_for(moderator).post(f"{V1}/admin/pending", {}, format="json"), 405)
    assert_error(client_for(moderator).get(f"{V1}/admin/approve/00000000-0000-0000-0000-000000000000"), 405)


def test_stats_count_everything(admin_user: User, owner: User, moderator: User) -> None:
    pending(owner)
    TestCaseFactory(created_by=owner)
    TestCaseFactory(created_by=owner, status=TestCase.Status.ARCHIVED)
    LLMModelFactory(is_active=False)
    ExecutionFactory(test_case=TestCaseFactory(created_by=owner), status=Execution.Status.RUNNING)
    TestResultFactory(executed_at=timezone.now() - timedelta(days=3))
    TestResultFactory()
    body = client_for(admin_user).get(f"{V1}/admin/stats").json()
    assert body["users"]["by_role"]["admin"] == 1
    assert body["users"]["by_role"]["moderator"] == 1
    assert body["users"]["total"] == User.objects.count()
    assert body["tests"]["by_status"]["pending"] == 1
    assert body["tests"]["by_status"]["archived"] == 1
    assert body["tests"]["by_status"]["approved"] == TestCase.objects.filter(status="approved").count()
    assert body["models"]["active"] == body["models"]["total"] - 1
    assert body["executions"]["by_status"]["running"] == 1
    assert set(body["executions"]["by_status"]) == {"pending", "running", "completed", "failed", "cancelled"}
    assert body["results"] == {"total": 2, "last_24h": 1}
    assert set(body["queue"]) == {"backend", "depth", "workers"}
