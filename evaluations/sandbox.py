"""The sandbox rule (SPEC §11): tests that are not approved yet run only on models an admin marked `sandbox`, and
are judged only by such models, whoever starts them, so an unmoderated test cannot spend on an expensive model."""

from __future__ import annotations

from collections.abc import Sequence

from catalog.models import LLMModel, TestCase
from evaluations.scoring.judge import judge_model_name
from openbench.exceptions import ApplicationError


def needs_sandbox(test_cases: Sequence[TestCase]) -> bool:
    """Whether a run of these tests is held to sandbox models: one of them is not approved yet."""
    return any(test_case.status != TestCase.Status.APPROVED for test_case in test_cases)


def refuse_models_outside_sandbox(test_cases: Sequence[TestCase], models: Sequence[LLMModel]) -> None:
    """Tests that are not approved run only on models an admin marked `sandbox` (SPEC §11), whoever starts
    them, so a pending test cannot drain an expensive model. 403 `sandbox_only`, nothing created."""
    if not needs_sandbox(test_cases):
        return
    outside = sorted(model.name for model in models if not model.sandbox)
    if outside:
        raise ApplicationError(
            "Tests that are not approved yet run only on sandbox models; these are not: " + ", ".join(outside) + ".",
            code="sandbox_only",
            status=403,
            details={"model_ids": [f"Model {name} is not a sandbox model." for name in outside]},
        )


def refuse_judges_outside_sandbox(test_cases: Sequence[TestCase]) -> None:
    """A judge is a model call too, fed the test's prompt and rubric: an `llm_judge` test that is not approved is
    judged only by a sandbox model (SPEC §11), else 403 `sandbox_only` and nothing created. (No judge at
    all, neither named nor JUDGE_MODEL, costs nothing: each scoring fails without a call.)"""
    judge = TestCase.EvaluationType.LLM_JUDGE
    judged = [
        test_case for test_case in test_cases if needs_sandbox([test_case]) and test_case.evaluation_type == judge
    ]
    names = {judge_model_name(test_case.evaluation_config) for test_case in judged} - {""}
    # A name no model has yet is refused too: `sync_models` may register it before the run is planned. Active or not:
    # a judge need not be on the leaderboard (an inactive sandbox judge stays out of the default runs).
    allowed = set(LLMModel.objects.filter(name__in=names, sandbox=True).values_list("name", flat=True))
    outside = sorted(names - allowed)
    if outside:
        raise ApplicationError(
            "Tests that are not approved yet are judged only by sandbox models; these judges are not: "
            + ", ".join(outside)
            + ".",
            code="sandbox_only",
            status=403,
            details={"judge_model": [f"Model {name} is not a sandbox model." for name in outside]},
        )
