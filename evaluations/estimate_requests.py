"""What a caller asks to have estimated (SPEC §11), checked and sized before anything is counted: tests by id, or
the tests a suite's run would start; models by id, or what a run takes by default. evaluations.estimates computes
the estimate itself. Used by POST /executions/estimate and the run forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.models import LLMModel, Suite, TestCase
from catalog.suites import empty_suite_error, suite_tests
from evaluations.estimates import MAX_ESTIMATE_EVALUATIONS, RunEstimate, run_estimate
from evaluations.sandbox import needs_sandbox
from openbench.exceptions import ApplicationError

# Enough ids for one `IN (...)` on every database.
_CHUNK = 500


def default_models(*, test_cases: Sequence[TestCase]) -> list[LLMModel]:
    """The models a run of these tests takes when none are named, as evaluations.services decides it: every
    active model, or only the active sandbox models when one of the tests is not approved yet (SPEC §11)."""
    models = LLMModel.objects.active()
    if needs_sandbox(test_cases):
        models = models.sandbox()
    return list(models.order_by("name"))


def _chosen_models(model_ids: Sequence[Any] | None, *, test_cases: Sequence[TestCase]) -> list[LLMModel]:
    """The active models named by id (400 naming `model_ids` for none, an unknown or an inactive one), or the
    default ones for these tests (400 `no_models` when there are none)."""
    if model_ids is None:
        models = default_models(test_cases=test_cases)
        if not models:
            reason = (
                "Tests that are not approved yet run only on sandbox models, and there are none."
                if needs_sandbox(test_cases)
                else "There are no active models to estimate."
            )
            raise ApplicationError(reason, code="no_models", details={"model_ids": [reason]})
        return models
    wanted = list(dict.fromkeys(str(pk) for pk in model_ids))
    if not wanted:
        raise ApplicationError("Name at least one model.", details={"model_ids": ["This list may not be empty."]})
    models = list(LLMModel.objects.active().filter(pk__in=wanted).order_by("name"))
    missing = sorted(set(wanted) - {str(model.pk) for model in models})
    if missing:
        raise ApplicationError(
            "Unknown or inactive models.", details={"model_ids": [f"No active model with id {pk}." for pk in missing]}
        )
    return models


def _refuse_past_the_limit(evaluations: int) -> None:
    if evaluations > MAX_ESTIMATE_EVALUATIONS:
        raise ApplicationError(
            f"An estimate covers at most {MAX_ESTIMATE_EVALUATIONS:,} evaluations; this one has {evaluations:,}.",
            code="too_many_evaluations",
            details={"evaluations": evaluations, "max_evaluations": MAX_ESTIMATE_EVALUATIONS},
        )


def estimate_for_ids(
    *, user: Any, test_ids: Sequence[Any], model_ids: Sequence[Any] | None = None, repeats: int = 1
) -> RunEstimate:
    """The estimate of a run the caller describes by ids (the API, the run form).

    Tests must be visible to `user`; an unknown id and a test the caller may not see get the same 400, so the
    answer does not tell whether it exists. Models must be active; none given means what a run takes by default
    (default_models: every active model, only the sandbox ones for a test not approved yet). More than
    MAX_ESTIMATE_EVALUATIONS evaluations → 400 `too_many_evaluations`.
    """
    wanted_tests = list(dict.fromkeys(str(pk) for pk in test_ids))
    if not wanted_tests:
        raise ApplicationError("Name at least one test.", details={"test_ids": ["This list may not be empty."]})
    tests: list[TestCase] = []
    for start in range(0, len(wanted_tests), _CHUNK):
        tests.extend(TestCase.objects.visible_to(user).filter(pk__in=wanted_tests[start : start + _CHUNK]))
    missing = sorted(set(wanted_tests) - {str(test.pk) for test in tests})
    if missing:
        raise ApplicationError(
            "Unknown tests.", details={"test_ids": [f"No test with id {pk} is visible to you." for pk in missing]}
        )
    models = _chosen_models(model_ids, test_cases=tests)
    _refuse_past_the_limit(len(tests) * len(models) * repeats)
    return run_estimate(test_cases=tests, models=models, repeats=repeats)


def estimate_for_suite(
    *, user: Any, suite_id: Any, model_ids: Sequence[Any] | None = None, repeats: int = 1
) -> RunEstimate:
    """The estimate of the run POST /suites/{id}/run would start for `user` now: the suite's approved tests that
    user may see (catalog.suites.suite_tests), over `model_ids` or every active model (a suite runs approved tests
    only). The tests are counted before any is read: a category suite may select many thousands.

    An unknown suite → 400 naming `suite_id`; none of its tests for this user → 400 `empty_suite`; models and the
    size as in estimate_for_ids.
    """
    suite = Suite.objects.filter(pk=suite_id).first()
    if suite is None:
        raise ApplicationError("Unknown suite.", details={"suite_id": [f"No suite with id {suite_id}."]})
    models = _chosen_models(model_ids, test_cases=())
    tests = suite_tests(suite=suite, user=user)
    count = tests.count()
    if not count:
        raise empty_suite_error("suite_id")
    _refuse_past_the_limit(count * len(models) * repeats)
    return run_estimate(test_cases=list(tests), models=models, repeats=repeats)
