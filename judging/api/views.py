"""/api/v1: labelling a result (moderators) and a judge model's agreement with the labels (anyone)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import LLMModel
from evaluations.models import TestResult
from judging.api.serializers import AgreementSerializer, LabelRequestSerializer, ResultLabelSerializer
from judging.selectors import JudgeAgreement, judge_agreement
from judging.services import result_label
from judging.stats import KAPPA_CI_METHOD
from leaderboard.selectors import model_brief
from openbench.api.permissions import IsModerator
from openbench.api.schema import error_response
from openbench.api.viewsets import BaseViewSet


def agreement_data(entry: JudgeAgreement) -> dict[str, Any]:
    """The agreement answer of SPEC §13 (the judges page renders the same numbers)."""
    numbers, confusion = entry.agreement, entry.agreement.confusion
    return {
        "judge": model_brief(entry.judge),
        "labelled": numbers.labelled,
        "agree": numbers.agree,
        "accuracy": numbers.accuracy,
        "cohen_kappa": numbers.kappa,
        "kappa_ci_low": numbers.ci_low,
        "kappa_ci_high": numbers.ci_high,
        "kappa_ci_method": KAPPA_CI_METHOD,
        "confusion": {"tp": confusion.tp, "fp": confusion.fp, "fn": confusion.fn, "tn": confusion.tn},
    }


@extend_schema(tags=["judging"])
class ResultLabelViewSet(BaseViewSet):
    """POST /results/{id}/label: moderators only (others 403, as for the moderation queue); an unknown result
    is a 404."""

    queryset = TestResult.objects.all()
    permission_classes = [IsModerator]

    @extend_schema(
        summary="Label a result correct or incorrect (moderators; a relabel updates it and is audited)",
        description=(
            "Records the moderator's verdict on a scored result; the current label is replaced and every change "
            "(old → new) is kept in the audit trail. 201 for a first label, 200 otherwise. `is_correct` must be a "
            "JSON boolean (400 naming it). A result without a verdict (failed, cancelled) → 409 `not_scored`."
        ),
        request=LabelRequestSerializer,
        responses={200: ResultLabelSerializer, 201: ResultLabelSerializer, 409: error_response("409")},
    )
    def label(self, request: Request, pk: str | None = None) -> Response:
        result = self.get_object()
        data = LabelRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = result_label(
            result=result,
            moderator=request.user,  # type: ignore[arg-type]
            is_correct=data.validated_data["is_correct"],
            note=data.validated_data["note"],
        )
        code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
        return Response(ResultLabelSerializer(outcome.label).data, status=code)


@extend_schema(tags=["judging"])
class JudgeAgreementViewSet(BaseViewSet):
    """GET /judges/{model_id}/agreement: public, like the leaderboard; counts only results the caller may see."""

    queryset = LLMModel.objects.all()
    permission_classes = [permissions.AllowAny]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset  # the model registry is public (SPEC §2)

    @extend_schema(
        summary="A judge model's agreement with moderators' labels",
        description=(
            "Over every labelled result this model judged (llm_judge results it decided; results the cascade "
            "decided by exact/contains match do not count) that the caller may see: accuracy, Cohen's kappa with "
            "a 95% interval (Fleiss-Cohen-Everitt 1969 large-sample standard error, kappa ± 1.96·SE, clipped "
            "to [-1, 1]) and the confusion matrix (the judge's verdict against the label). No labels → counts "
            "0 and the rates null; kappa and its interval are null when chance agreement is 1 (both always said "
            "the same). Unknown model → 404."
        ),
        responses={200: AgreementSerializer},
    )
    def agreement(self, request: Request, pk: str | None = None) -> Response:
        judge = self.get_object()
        return Response(agreement_data(judge_agreement(user=request.user, judge=judge)))
