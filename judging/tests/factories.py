from __future__ import annotations

from typing import Any

from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from evaluations.tests.factories import ExecutionFactory, TestResultFactory


def judged_result(
    judge: LLMModel, *, verdict: bool, decided_by: str = "judge", by_name_only: bool = False, **fields: Any
) -> TestResult:
    """A completed llm_judge result as the judge scorer writes it (details name the judge). `by_name_only`:
    as it wrote them before the cascade, with the judge's name and no judge_model_id or decided_by."""
    details: dict[str, Any] = {"judge_model": judge.name}
    if not by_name_only:
        details.update(judge_model_id=str(judge.pk), decided_by=decided_by)
    if decided_by != "judge":
        details = {"decided_by": decided_by, "mode": "text"}
    test_case = fields.pop("test_case", None) or TestCaseFactory(evaluation_type="llm_judge")
    return TestResultFactory(
        execution=ExecutionFactory(test_case=test_case),
        model=fields.pop("model", None) or LLMModelFactory(),
        is_correct=verdict,
        score=1.0 if verdict else 0.0,
        evaluation_details=details,
        **fields,
    )
