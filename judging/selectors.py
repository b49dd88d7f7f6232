"""Reads of judge agreement: per judge model, the confusion of its verdicts with moderators' labels.

A result counts toward a judge when the judge decided it (an llm_judge result whose evaluation_details
name that judge, and not decided by the cascade's cheap checks), it has a verdict (completed, is_correct
set) and a label, and the caller may see its test (`TestResult.objects.visible_to`). Results record the
judge by id (`judge_model_id`) since the cascade change; older ones only by name (`judge_model`), which
is matched to the registry's unique names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.db.models.fields.json import KeyTextTransform

from catalog.models import LLMModel
from evaluations.models import TestResult
from evaluations.scoring.cascade import DECIDED_BY_CASCADE
from judging.models import ResultLabel
from judging.stats import Agreement, Confusion, agreement


@dataclass(frozen=True)
class JudgeAgreement:
    """One judge model's agreement with the labels."""

    judge: LLMModel
    agreement: Agreement


def _labelled_verdicts(user: Any) -> Any:
    return (
        ResultLabel.objects.filter(
            result__in=TestResult.objects.visible_to(user),
            result__status=TestResult.Status.COMPLETED,
            result__is_correct__isnull=False,
        )
        # Results from before the cascade have no decided_by: NOT (key IN …) alone would drop them too (NULL).
        .exclude(
            Q(result__evaluation_details__has_key="decided_by")
            & Q(result__evaluation_details__decided_by__in=DECIDED_BY_CASCADE)
        )
        .filter(
            Q(result__evaluation_details__has_key="judge_model_id")
            | Q(result__evaluation_details__has_key="judge_model")
        )
    )


def judge_confusions(*, user: Any, judge: LLMModel | None = None) -> dict[Any, Confusion]:
    """Confusion matrices by judge model id, over the labelled results `user` may see (one judge, or all)."""
    verdicts = _labelled_verdicts(user)
    if judge is not None:
        verdicts = verdicts.filter(
            Q(result__evaluation_details__judge_model_id=str(judge.pk))
            | Q(
                result__evaluation_details__judge_model_id__isnull=True,
                result__evaluation_details__judge_model=judge.name,
            )
        )
    rows = (
        verdicts.annotate(
            judge_id=KeyTextTransform("judge_model_id", "result__evaluation_details"),
            judge_name=KeyTextTransform("judge_model", "result__evaluation_details"),
        )
        .values("judge_id", "judge_name")
        .annotate(
            tp=Count("pk", filter=Q(result__is_correct=True, is_correct=True)),
            fp=Count("pk", filter=Q(result__is_correct=True, is_correct=False)),
            fn=Count("pk", filter=Q(result__is_correct=False, is_correct=True)),
            tn=Count("pk", filter=Q(result__is_correct=False, is_correct=False)),
        )
        .order_by()
    )
    rows = list(rows)
    # Results from before judge_model_id was recorded name their judge only: map names to ids once.
    names = {row["judge_name"] for row in rows if not row["judge_id"] and row["judge_name"]}
    id_of = {name: str(pk) for name, pk in LLMModel.objects.filter(name__in=names).values_list("name", "pk")}
    confusions: dict[Any, Confusion] = {}
    for row in rows:
        key = row["judge_id"] or id_of.get(row["judge_name"] or "")
        if not key:
            continue  # a judge no longer in the registry
        counts = Confusion(tp=row["tp"], fp=row["fp"], fn=row["fn"], tn=row["tn"])
        confusions[key] = confusions.get(key, Confusion()) + counts
    return confusions


def judge_agreement(*, user: Any, judge: LLMModel) -> JudgeAgreement:
    """GET /judges/{id}/agreement: zeros and nulls when the judge has no labelled result the caller may see."""
    confusion = judge_confusions(user=user, judge=judge).get(str(judge.pk), Confusion())
    return JudgeAgreement(judge=judge, agreement=agreement(confusion))


def judge_ranking(*, user: Any) -> list[JudgeAgreement]:
    """Every judge with labelled results, best agreement first: kappa (undefined last), then accuracy, then n."""
    confusions = judge_confusions(user=user)
    judges = LLMModel.objects.in_bulk(list(confusions))
    ranked = [JudgeAgreement(judge=judge, agreement=agreement(confusions[str(pk)])) for pk, judge in judges.items()]

    def order(entry: JudgeAgreement) -> tuple[bool, float, float, int, str]:
        numbers = entry.agreement
        kappa = numbers.kappa if numbers.kappa is not None else -2.0
        return (numbers.kappa is None, -kappa, -(numbers.accuracy or 0.0), -numbers.labelled, entry.judge.name)

    return sorted(ranked, key=order)
