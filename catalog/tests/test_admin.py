"""The Django admin as the moderators' tool."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import ModerationEvent, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.tests.factories import TestResultFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator_client(moderator: Any) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def _pending(title: str, age_days: int, owner: Any) -> TestCase:
    test_case = TestCaseFactory(title=title, status=TestCase.Status.PENDING, created_by=owner)
    TestCase.objects.filter(pk=test_case.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return test_case


def test_the_pending_queue_lists_only_pending_tests_oldest_first(moderator_client: Client, owner: Any) -> None:
    _pending("Newer pending", 1, owner)
    _pending("Older pending", 5, owner)
    TestCaseFactory(title="Already approved", created_by=owner)
    response = moderator_client.get(reverse("admin:catalog_pendingtestcase_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Already approved" not in body
    assert body.index("Older pending") < body.index("Newer pending")


def test_approving_from_the_admin_records_the_moderator_and_notes(
    moderator_client: Client, moderator: Any, owner: Any
) -> None:
    test_case = _pending("To approve", 1, owner)
    url = reverse("admin:catalog_pendingtestcase_changelist")
    data = {"action": "approve_selected", "_selected_action": [str(test_case.pk)], f"revision_{test_case.pk}": "1"}
    ask = moderator_client.post(url, data)
    assert ask.status_code == 200 and b"Notes (optional)" in ask.content
    done = moderator_client.post(url, {**data, "confirm": "yes", "notes": "Looks right."})
    assert done.status_code == 302
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.APPROVED and test_case.moderated_by == moderator
    event = ModerationEvent.objects.get(test_case=test_case, action="approve")
    assert (event.actor, event.notes) == (moderator, "Looks right.")


def test_rejecting_from_the_admin_asks_for_a_reason_and_keeps_the_test_pending_without_one(
    moderator_client: Client, owner: Any
) -> None:
    test_case = _pending("To reject", 1, owner)
    url = reverse("admin:catalog_testcase_changelist")
    data = {
        "action": "reject_selected",
        "_selected_action": [str(test_case.pk)],
        f"revision_{test_case.pk}": str(test_case.revision),
        "confirm": "yes",
    }
    refused = moderator_client.post(url, {**data, "notes": ""})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.PENDING
    moderator_client.post(url, {**data, "notes": "Expected answer is wrong."})
    test_case.refresh_from_db()
    assert test_case.status == TestCase.Status.REJECTED
    assert test_case.moderation_notes == "Expected answer is wrong."


def test_deciding_an_already_decided_test_says_why(moderator_client: Client, owner: Any) -> None:
    test_case = TestCaseFactory(created_by=owner)  # approved
    url = reverse("admin:catalog_testcase_changelist")
    response = moderator_client.post(
        url,
        {
            "action": "approve_selected",
            "_selected_action": [str(test_case.pk)],
            f"revision_{test_case.pk}": str(test_case.revision),
            "confirm": "yes",
            "notes": "",
        },
        follow=True,
    )
    assert b"Only pending tests can be approved" in response.content


def test_filters_and_search_work_on_the_test_list(moderator_client: Client, owner: Any) -> None:
    TestCaseFactory(title="Photosynthesis basics", category="biology", created_by=owner)
    TestCaseFactory(title="Capital of Chile", category="geography", created_by=owner)
    url = reverse("admin:catalog_testcase_changelist")
    assert b"Photosynthesis" not in moderator_client.get(url, {"category": "geography"}).content
    assert b"Capital of Chile" not in moderator_client.get(url, {"q": "Photosynthesis"}).content
    assert moderator_client.get(url, {"status__exact": "approved", "difficulty__exact": "easy"}).status_code == 200


def test_the_audit_trail_is_visible_and_read_only(moderator_client: Client, owner: Any, moderator: Any) -> None:
    test_case = _pending("Audited", 1, owner)
    from catalog.services import test_case_approve

    test_case_approve(test_case=test_case, moderator=moderator, notes="ok")
    event = ModerationEvent.objects.get(test_case=test_case, action="approve")
    assert moderator_client.get(reverse("admin:catalog_moderationevent_changelist")).status_code == 200
    detail = moderator_client.get(reverse("admin:catalog_moderationevent_change", args=[event.pk]))
    assert detail.status_code == 200 and b'name="notes"' not in detail.content
    response = moderator_client.post(reverse("admin:catalog_moderationevent_change", args=[event.pk]), {"notes": "x"})
    assert response.status_code == 403
    assert moderator_client.post(reverse("admin:catalog_moderationevent_delete", args=[event.pk])).status_code == 403
    assert ModerationEvent.objects.get(pk=event.pk).notes == "ok"


def test_moderators_hold_exactly_the_permissions_they_need(moderator: Any) -> None:
    assert moderator.has_perm("catalog.change_testcase")
    assert moderator.has_perm("catalog.view_moderationevent")
    assert moderator.has_perm("evaluations.view_testresult")
    assert not moderator.has_perm("catalog.add_llmmodel")
    assert not moderator.has_perm("catalog.change_llmmodel")
    assert not moderator.has_perm("accounts.change_user")
    assert not moderator.has_perm("catalog.delete_testcase")
    assert not moderator.has_perm("evaluations.change_execution")


def test_moderators_cannot_manage_models_or_users_but_admins_can(moderator_client: Client, admin_user: Any) -> None:
    model = LLMModelFactory()
    assert moderator_client.get(reverse("admin:catalog_llmmodel_add")).status_code == 403
    assert moderator_client.get(reverse("admin:accounts_user_changelist")).status_code == 403
    admin_client = Client()
    admin_client.force_login(admin_user)
    assert admin_client.get(reverse("admin:catalog_llmmodel_change", args=[model.pk])).status_code == 200
    assert admin_client.get(reverse("admin:accounts_user_changelist")).status_code == 200


def test_plain_users_are_kept_out_of_the_admin(owner: Any) -> None:
    client = Client()
    client.force_login(owner)
    response = client.get(reverse("admin:catalog_testcase_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_results_and_executions_are_read_only_in_the_admin(moderator_client: Client) -> None:
    result = TestResultFactory()
    assert (
        moderator_client.get(
            reverse("admin:evaluations_testresult_changelist"), {"status__exact": "completed"}
        ).status_code
        == 200
    )
    assert moderator_client.get(reverse("admin:evaluations_execution_changelist")).status_code == 200
    detail = moderator_client.get(reverse("admin:evaluations_execution_change", args=[result.execution.pk]))
    assert detail.status_code == 200 and b"0/1" in detail.content
    assert (
        moderator_client.post(reverse("admin:evaluations_testresult_change", args=[result.pk]), {}).status_code == 403
    )
    unchanged = type(result).objects.get(pk=result.pk)
    assert (unchanged.status, unchanged.score, unchanged.raw_output) == (result.status, result.score, result.raw_output)


def test_a_moderators_edit_in_the_admin_makes_a_new_revision(moderator_client: Client, owner: Any) -> None:
    test_case = TestCaseFactory(created_by=owner, title="Editable")
    url = reverse("admin:catalog_testcase_change", args=[test_case.pk])
    form = {
        "title": "Editable",
        "description": "",
        "category": "geography",
        "tag_names": "capitals, europe",
        "difficulty": "easy",
        "language": "en",
        "is_public": "on",
        "system_prompt": "",
        "prompt": "What is the capital of Italy?",
        "timeout_seconds": "60",
        "expected_output": '"Rome"',
        "output_schema": "null",
        "evaluation_type": "exact_match",
        "evaluation_config": "{}",
        **_empty_inline_management(),
    }
    response = moderator_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    test_case.refresh_from_db()
    assert (test_case.revision, test_case.status, test_case.expected_output) == (2, "pending", "Rome")
    assert sorted(test_case.tags.values_list("name", flat=True)) == ["capitals", "europe"]


def test_invalid_input_in_the_admin_is_shown_in_place_and_nothing_is_saved(
    moderator_client: Client, owner: Any
) -> None:
    test_case = TestCaseFactory(created_by=owner)
    url = reverse("admin:catalog_testcase_change", args=[test_case.pk])
    response = moderator_client.post(
        url,
        {
            "title": "x",
            "category": "geography",
            "difficulty": "easy",
            "language": "en",
            "prompt": "p",
            "timeout_seconds": "500",
            "expected_output": '"a"',
            "output_schema": '{"type": 12}',
            "evaluation_type": "exact_match",
            "evaluation_config": "{}",
            **_empty_inline_management(),
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Not a valid JSON Schema" in body and "less than or equal to 300" in body
    test_case.refresh_from_db()
    assert test_case.title != "x"


def _empty_inline_management() -> dict[str, str]:
    data = {}
    for prefix in ("moderation_events", "revisions"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "0"})
    return data
