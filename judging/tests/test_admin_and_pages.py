"""Labels through the admin (actions on results, read-only labels and audit trail), the test page's label
buttons, and the judges page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from judging.models import LabelEvent, ResultLabel
from judging.services import result_label
from judging.tests.factories import judged_result

pytestmark = pytest.mark.django_db


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def judge() -> Any:
    return LLMModelFactory(name="judge-model", display_name="Judge Model", is_active=False)


# --- admin --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "is_correct"), [("label_correct", True), ("label_incorrect", False)])
def test_the_admin_actions_label_the_selected_results(moderator, judge, action, is_correct):
    results = [judged_result(judge, verdict=True) for _ in range(2)]
    unscored = judged_result(judge, verdict=True, status=TestResult.Status.FAILED)
    TestResult.objects.filter(pk=unscored.pk).update(is_correct=None, score=None)
    client = logged_in(moderator)
    url = reverse("admin:evaluations_testresult_changelist")
    selected = [str(r.pk) for r in [*results, unscored]]
    response = client.post(url, {"action": action, "_selected_action": selected}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Labelled 2 result(s)" in page
    assert "can be labelled" in page  # the unscored one is refused with the reason
    assert sorted(ResultLabel.objects.values_list("is_correct", flat=True)) == [is_correct, is_correct]
    assert set(LabelEvent.objects.values_list("actor", flat=True)) == {moderator.pk}
    assert not ResultLabel.objects.filter(result=unscored).exists()


def test_moderators_read_labels_and_their_audit_trail_but_cannot_edit_them(moderator, judge):
    result = judged_result(judge, verdict=True)
    outcome = result_label(result=result, moderator=moderator, is_correct=False, note="Off by one.")
    client = logged_in(moderator)
    assert client.get(reverse("admin:judging_resultlabel_changelist")).status_code == 200
    assert "Off by one." in client.get(reverse("admin:judging_labelevent_changelist")).content.decode()
    change = reverse("admin:judging_resultlabel_change", args=[outcome.label.pk])
    assert client.post(change, {"is_correct": "on"}).status_code == 403
    assert client.get(reverse("admin:judging_resultlabel_add")).status_code == 403
    listing = client.get(reverse("admin:evaluations_testresult_changelist")).content.decode()
    assert "label_correct" in listing and "incorrect" in listing


# --- the test page ------------------------------------------------------------------------------------------


def test_moderators_get_label_buttons_on_the_test_page_and_users_do_not(moderator, owner, judge):
    result = judged_result(judge, verdict=True)
    url = reverse("catalog:test-detail", args=[result.test_case_id])
    action = reverse("judging:result-label", args=[result.pk])
    assert action in logged_in(moderator).get(url).content.decode()
    assert action not in logged_in(owner).get(url).content.decode()
    assert action not in Client().get(url).content.decode()


def test_a_label_button_labels_and_returns_to_the_test(moderator, judge):
    result = judged_result(judge, verdict=True)
    client = logged_in(moderator)
    response = client.post(reverse("judging:result-label", args=[result.pk]), {"is_correct": "false"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/tests/{result.test_case_id}/#result-{result.pk}")
    assert ResultLabel.objects.get(result=result).is_correct is False
    page = client.get(reverse("catalog:test-detail", args=[result.test_case_id])).content.decode()
    assert 'data-label="incorrect"' in page


def test_the_label_button_refuses_users_and_bad_values(moderator, owner, judge):
    result = judged_result(judge, verdict=True)
    url = reverse("judging:result-label", args=[result.pk])
    assert logged_in(owner).post(url, {"is_correct": "true"}).status_code == 403
    assert logged_in(moderator).post(url, {"is_correct": "maybe"}).status_code == 302
    assert logged_in(moderator).get(url).status_code == 405
    unknown = reverse("judging:result-label", args=["6f1c1b8e-0000-4000-8000-000000000000"])
    assert logged_in(moderator).post(unknown, {"is_correct": "true"}).status_code == 404
    assert not ResultLabel.objects.exists()


# --- the judges page ----------------------------------------------------------------------------------------


def test_the_judges_page_ranks_by_kappa_then_accuracy(moderator):
    good = LLMModelFactory(name="good-judge", display_name="Good Judge")
    poor = LLMModelFactory(name="poor-judge", display_name="Poor Judge")
    # good: tp 2, tn 2 (kappa 1); poor: tp 2, fp 1, fn 1, tn 0 (kappa < 0)
    for verdict, truth in [(True, True), (True, True), (False, False), (False, False)]:
        result_label(result=judged_result(good, verdict=verdict), moderator=moderator, is_correct=truth)
    for verdict, truth in [(True, True), (True, True), (True, False), (False, True)]:
        result_label(result=judged_result(poor, verdict=verdict), moderator=moderator, is_correct=truth)
    page = Client().get(reverse("judging:judge-list")).content.decode()
    assert page.index("Good Judge") < page.index("Poor Judge")
    assert reverse("judging:judge-list") in page  # linked in the navigation


def test_the_judges_page_without_labels(db):
    TestCaseFactory()
    assert "No judge has labelled results yet" in Client().get(reverse("judging:judge-list")).content.decode()
