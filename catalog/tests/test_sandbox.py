"""Sandbox models (SPEC §11): tests not yet approved run only on models an admin marked `sandbox`."""

from __future__ import annotations

import pytest

from accounts.models import User
from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from evaluations.services import executions_start_batch
from openbench.exceptions import ApplicationError
from openbench.tests.api import V1, assert_error, client_for, reset_throttles  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def cheap() -> LLMModel:
    return LLMModelFactory(name="cheap", sandbox=True, config={"accuracy": 1.0, "latency_ms": 0})


@pytest.fixture
def expensive() -> LLMModel:
    return LLMModelFactory(name="expensive", config={"accuracy": 1.0, "latency_ms": 0})


def _run(user: User, test_case: TestCase, **payload: object):  # type: ignore[no-untyped-def]
    return client_for(user).post(f"{V1}/tests/{test_case.pk}/run", payload, format="json")


def test_a_pending_test_on_a_model_outside_the_sandbox_is_403_and_creates_nothing(
    owner: User, cheap: LLMModel, expensive: LLMModel
) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    error = assert_error(_run(owner, test_case, model_ids=[str(cheap.pk), str(expensive.pk)]), 403, "sandbox_only")
    assert "expensive" in error["message"]
    assert not Execution.objects.exists()


def test_a_moderator_is_held_to_the_sandbox_for_a_pending_test_too(
    moderator: User, owner: User, expensive: LLMModel
) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    assert_error(_run(moderator, test_case, model_ids=[str(expensive.pk)]), 403, "sandbox_only")
    assert not Execution.objects.exists()


def test_a_pending_test_runs_on_sandbox_models(owner: User, cheap: LLMModel, expensive: LLMModel) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    response = _run(owner, test_case, model_ids=[str(cheap.pk)])
    assert response.status_code == 202, response.content
    assert list(Execution.objects.get().llm_models.all()) == [cheap]


def test_a_pending_test_without_model_ids_runs_on_the_active_sandbox_models(
    owner: User, cheap: LLMModel, expensive: LLMModel
) -> None:
    LLMModelFactory(name="retired-sandbox", sandbox=True, is_active=False)
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    response = _run(owner, test_case)
    assert response.status_code == 202, response.content
    assert list(Execution.objects.get().llm_models.all()) == [cheap]


def test_a_pending_test_without_any_sandbox_model_is_403(owner: User, expensive: LLMModel) -> None:
    test_case = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    assert_error(_run(owner, test_case), 403, "sandbox_only")
    assert not Execution.objects.exists()


def test_an_approved_test_runs_on_any_active_model(owner: User, cheap: LLMModel, expensive: LLMModel) -> None:
    test_case = TestCaseFactory(status=TestCase.Status.APPROVED)
    response = _run(owner, test_case)
    assert response.status_code == 202, response.content
    assert set(Execution.objects.get().llm_models.all()) == {cheap, expensive}


def test_a_batch_with_one_pending_test_is_refused_as_a_whole(moderator: User, expensive: LLMModel) -> None:
    tests = [TestCaseFactory(), TestCaseFactory(status=TestCase.Status.PENDING)]
    with pytest.raises(ApplicationError) as refused:
        executions_start_batch(test_cases=tests, models=[expensive], started_by=moderator)
    assert (refused.value.code, refused.value.status) == ("sandbox_only", 403)
    assert not Execution.objects.exists()


def _judged(judge: str, status: str = TestCase.Status.PENDING, **fields: object) -> TestCase:
    config = {"judge_model": judge} if judge else {}
    return TestCaseFactory(status=status, evaluation_type="llm_judge", evaluation_config=config, **fields)


@pytest.mark.parametrize("how", ["named by the test", "the platform's default"])
def test_a_pending_test_judged_by_a_model_outside_the_sandbox_is_403_and_creates_nothing(
    owner: User,
    cheap: LLMModel,
    expensive: LLMModel,
    settings,
    how: str,  # type: ignore[no-untyped-def]
) -> None:
    # The judge gets the test's prompt and rubric: an unmoderated test must not reach an expensive model that way.
    settings.JUDGE_MODEL = expensive.name
    test_case = _judged(expensive.name if how == "named by the test" else "", created_by=owner)

    error = assert_error(_run(owner, test_case, model_ids=[str(cheap.pk)]), 403, "sandbox_only")

    assert error["details"] == {"judge_model": ["Model expensive is not a sandbox model."]}
    assert not Execution.objects.exists()


def test_a_pending_test_naming_a_judge_no_model_has_yet_is_403(owner: User, cheap: LLMModel) -> None:
    # `sync_models` could register that name (an expensive one) before the run is planned.
    test_case = _judged("openrouter-openai/gpt-5-pro", created_by=owner)

    error = assert_error(_run(owner, test_case, model_ids=[str(cheap.pk)]), 403, "sandbox_only")

    assert "openrouter-openai/gpt-5-pro" in error["message"]
    assert not Execution.objects.exists()


def test_a_pending_test_may_be_judged_by_an_inactive_sandbox_judge(owner: User, cheap: LLMModel) -> None:
    # A judge need not be on the leaderboard: inactive, it stays out of the default runs.
    LLMModelFactory(name="quiet-judge", sandbox=True, is_active=False)
    test_case = _judged("quiet-judge", created_by=owner)

    response = _run(owner, test_case)

    assert response.status_code == 202, response.content
    assert list(Execution.objects.get().llm_models.all()) == [cheap]


def test_a_pending_test_judged_by_a_sandbox_model_runs(owner: User, cheap: LLMModel) -> None:
    test_case = _judged(cheap.name, created_by=owner)

    response = _run(owner, test_case, model_ids=[str(cheap.pk)])

    assert response.status_code == 202, response.content


def test_an_approved_test_may_name_any_judge(owner: User, cheap: LLMModel, expensive: LLMModel) -> None:
    test_case = _judged(expensive.name, status=TestCase.Status.APPROVED)

    response = _run(owner, test_case, model_ids=[str(cheap.pk)])

    assert response.status_code == 202, response.content


def test_a_batch_with_a_pending_test_judged_outside_the_sandbox_is_refused_as_a_whole(
    moderator: User, cheap: LLMModel, expensive: LLMModel
) -> None:
    tests = [TestCaseFactory(), _judged(expensive.name)]
    with pytest.raises(ApplicationError) as refused:
        executions_start_batch(test_cases=tests, models=[cheap], started_by=moderator)
    assert refused.value.code == "sandbox_only"
    assert not Execution.objects.exists()


def test_an_admin_marks_a_model_sandbox_in_the_django_admin(admin_user: User, expensive: LLMModel, client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    listing = client.get("/admin/catalog/llmmodel/?sandbox__exact=0")
    assert listing.status_code == 200
    assert "expensive" in listing.content.decode()
    page = client.get(f"/admin/catalog/llmmodel/{expensive.pk}/change/")
    assert 'name="sandbox"' in page.content.decode()


def test_the_demo_catalog_lets_contributors_try_pending_tests() -> None:
    from catalog.demo.data import DEMO_MODELS, JUDGE_MODEL_NAME

    runnable = [spec for spec in DEMO_MODELS if spec.get("is_active", True) and spec["name"] != JUDGE_MODEL_NAME]
    assert runnable
    assert all(spec.get("sandbox") for spec in runnable)
    # Its judge too, so that its pending llm_judge test runs ("Plan a trip").
    assert next(spec for spec in DEMO_MODELS if spec["name"] == JUDGE_MODEL_NAME).get("sandbox")


def test_every_pending_demo_test_can_be_started_by_its_author() -> None:
    from catalog.demo.seed import demo_catalog_seed
    from evaluations.services import execution_start

    demo_catalog_seed(password=None)
    pending = TestCase.objects.filter(status=TestCase.Status.PENDING)
    assert pending.filter(evaluation_type="llm_judge").exists()
    for test_case in pending:
        execution = execution_start(test_case=test_case, started_by=test_case.created_by)
        assert execution.llm_models.exists()
