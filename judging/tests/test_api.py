"""POST /results/{id}/label and GET /judges/{id}/agreement (SPEC §13)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from catalog.models import TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from judging.models import LabelEvent, ResultLabel
from judging.services import result_label
from judging.stats import Confusion, agreement
from judging.tests.factories import judged_result
from openbench.tests.api import V1, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge() -> Any:
    return LLMModelFactory(name="judge-model", is_active=False)


def label_url(result: TestResult) -> str:
    return f"{V1}/results/{result.pk}/label"


# --- labelling ----------------------------------------------------------------------------------------------


def test_a_moderator_labels_a_result_and_a_relabel_updates_it_with_an_audit_trail(moderator, client_for, judge):
    result = judged_result(judge, verdict=True)
    client = client_for(moderator)
    first = client.post(label_url(result), {"is_correct": False, "note": "Wrong city."}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["is_correct"] is False
    assert first.json()["note"] == "Wrong city."
    assert first.json()["labelled_by"] == str(moderator.pk)
    again = client.post(label_url(result), {"is_correct": True}, format="json")
    assert again.status_code == 200
    assert ResultLabel.objects.get(result=result).is_correct is True
    assert ResultLabel.objects.count() == 1
    events = list(LabelEvent.objects.filter(result=result).order_by("created_at"))
    assert [(e.old_is_correct, e.new_is_correct, e.actor_id) for e in events] == [
        (None, False, moderator.pk),
        (False, True, moderator.pk),
    ]


def test_the_same_label_twice_records_nothing_new(moderator, client_for, judge):
    result = judged_result(judge, verdict=True)
    client = client_for(moderator)
    assert client.post(label_url(result), {"is_correct": True}, format="json").status_code == 201
    assert client.post(label_url(result), {"is_correct": True}, format="json").status_code == 200
    assert LabelEvent.objects.count() == 1


def test_an_admin_may_label(admin_user, client_for, judge):
    result = judged_result(judge, verdict=True)
    assert client_for(admin_user).post(label_url(result), {"is_correct": True}, format="json").status_code == 201


def test_users_may_not_label_even_results_they_can_see(owner, client_for, judge):
    result = judged_result(judge, verdict=True)
    assert_error(client_for(owner).post(label_url(result), {"is_correct": True}, format="json"), 403)
    assert not ResultLabel.objects.exists()


def test_anonymous_callers_must_sign_in(anonymous, judge):
    result = judged_result(judge, verdict=True)
    assert_error(anonymous.post(label_url(result), {"is_correct": True}, format="json"), 401)


def test_an_unknown_result_is_404(moderator, client_for):
    client = client_for(moderator)
    assert_error(
        client.post(f"{V1}/results/6f1c1b8e-0000-4000-8000-000000000000/label", {"is_correct": True}, format="json"),
        404,
    )
    assert_error(client.post(f"{V1}/results/not-a-uuid/label", {"is_correct": True}, format="json"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"is_correct": None},
        {"is_correct": "yes"},
        {"is_correct": "true"},
        {"is_correct": 1},
        {"is_correct": [True]},
    ],
)
def test_a_bad_body_is_400_naming_is_correct(moderator, client_for, judge, body):
    result = judged_result(judge, verdict=True)
    error = assert_error(client_for(moderator).post(label_url(result), body, format="json"), 400, "validation_error")
    assert "is_correct" in error["details"]
    assert not ResultLabel.objects.exists()


def test_a_note_too_long_is_400_naming_note(moderator, client_for, judge):
    result = judged_result(judge, verdict=True)
    body = {"is_correct": True, "note": "x" * 2001}
    error = assert_error(client_for(moderator).post(label_url(result), body, format="json"), 400)
    assert "note" in error["details"]


def test_a_result_without_a_verdict_cannot_be_labelled(moderator, client_for, judge):
    result = judged_result(judge, verdict=True, status=TestResult.Status.FAILED)
    TestResult.objects.filter(pk=result.pk).update(is_correct=None, score=None)
    assert_error(client_for(moderator).post(label_url(result), {"is_correct": True}, format="json"), 409, "not_scored")


def test_the_service_refuses_a_non_moderator(owner, judge):
    from openbench.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        result_label(result=judged_result(judge, verdict=True), moderator=owner, is_correct=True)
    assert refused.value.status == 403


# --- agreement ----------------------------------------------------------------------------------------------


def label(result: TestResult, is_correct: bool, moderator: User) -> None:
    result_label(result=result, moderator=moderator, is_correct=is_correct)


def test_agreement_counts_the_judges_labelled_verdicts(moderator, anonymous, judge):
    # (judge verdict, label) → tp 3, fp 1, fn 2, tn 4
    cells = [(True, True)] * 3 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 4
    for verdict, truth in cells:
        label(judged_result(judge, verdict=verdict), truth, moderator)
    # Not counted: a result the cascade decided, a result of another judge, an unlabelled one.
    label(judged_result(judge, verdict=True, decided_by="contains"), False, moderator)
    label(judged_result(LLMModelFactory(name="other-judge"), verdict=True), False, moderator)
    judged_result(judge, verdict=True)
    # Counted: a result from before the cascade (the judge named only; no judge_model_id, no decided_by).
    label(judged_result(judge, verdict=False, by_name_only=True), False, moderator)

    body = anonymous.get(f"{V1}/judges/{judge.pk}/agreement").json()
    expected = agreement(Confusion(tp=3, fp=1, fn=2, tn=5))
    assert body["judge"] == {
        "id": str(judge.pk),
        "name": "judge-model",
        "display_name": judge.display_name,
        "provider": judge.provider,
    }
    assert body["confusion"] == {"tp": 3, "fp": 1, "fn": 2, "tn": 5}
    assert (body["labelled"], body["agree"]) == (11, 8)
    assert body["accuracy"] == pytest.approx(8 / 11)
    assert body["cohen_kappa"] == pytest.approx(expected.kappa)
    assert body["kappa_ci_low"] == pytest.approx(expected.ci_low)
    assert body["kappa_ci_high"] == pytest.approx(expected.ci_high)
    assert "Fleiss" in body["kappa_ci_method"]


def test_a_judge_without_labels_has_zeros_and_nulls(anonymous, judge):
    judged_result(judge, verdict=True)
    body = anonymous.get(f"{V1}/judges/{judge.pk}/agreement").json()
    assert (body["labelled"], body["agree"]) == (0, 0)
    assert body["confusion"] == {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    assert [body[k] for k in ("accuracy", "cohen_kappa", "kappa_ci_low", "kappa_ci_high")] == [None] * 4


def test_an_unknown_judge_is_404(anonymous):
    assert_error(anonymous.get(f"{V1}/judges/6f1c1b8e-0000-4000-8000-000000000000/agreement"), 404)


def test_labels_on_tests_the_caller_may_not_see_do_not_count_for_them(moderator, owner, client_for, anonymous, judge):
    private = TestCaseFactory(evaluation_type="llm_judge", is_public=False, created_by=owner)
    label(judged_result(judge, verdict=True, test_case=private), True, moderator)
    assert anonymous.get(f"{V1}/judges/{judge.pk}/agreement").json()["labelled"] == 0
    assert client_for(owner).get(f"{V1}/judges/{judge.pk}/agreement").json()["labelled"] == 1
    assert client_for(moderator).get(f"{V1}/judges/{judge.pk}/agreement").json()["labelled"] == 1
    assert TestCase.objects.visible_to(None).filter(pk=private.pk).count() == 0
