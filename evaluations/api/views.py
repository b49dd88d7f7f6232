"""/api/v1: starting a run of a test, the caller's executions (all of them for moderators), their
results, cancel."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import LLMModel, TestCase
from evaluations.api.serializers import (
    EstimateRequestSerializer,
    EstimateSerializer,
    ExecutionSerializer,
    RunSerializer,
    TestResultSerializer,
)
from evaluations.estimate_requests import estimate_for_ids, estimate_for_suite
from evaluations.filters import ExecutionFilter, TestResultFilter
from evaluations.models import Execution, TestResult
from evaluations.selectors import with_judge_savings
from evaluations.services import execution_cancel, execution_start
from openbench.api.schema import error_response
from openbench.api.throttles import DEFAULT_THROTTLES, EstimateThrottle, RunThrottle
from openbench.api.viewsets import BaseAPIView, BaseViewSet
from openbench.exceptions import ApplicationError


@extend_schema(tags=["tests"])
class TestCaseRunViewSet(BaseViewSet):
    """POST /tests/{id}/run, next to the tests' own routes: a test the caller may not see is a 404."""

    __test__ = False

    queryset = TestCase.objects.all()
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [RunThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        summary="Run a test against models (answers at once; the work runs in the background)",
        description=(
            "Starts one execution of this test over `model_ids` (default: every active model) and answers 202 "
            "at once; poll GET /executions/{id} for progress. Approved tests and the caller's own tests can be "
            "run; the `run` throttle scope applies. A test not yet approved runs only on sandbox models "
            "(default: the active sandbox models; others → 403 `sandbox_only`). The run's estimate is reserved "
            "from the caller's daily budget and the providers' monthly caps (402 when it does not fit). "
            "`repeats` k (1–20, default 1) samples each model k times: k results per model, `sample` 0…k−1, "
            "and k times the evaluations and the reserved estimate (SPEC §12)."
        ),
        request=RunSerializer,
        responses={202: ExecutionSerializer, 402: error_response("402"), 409: error_response("409")},
    )
    def run(self, request: Request, pk: str | None = None) -> Response:
        test_case = self.get_object()
        data = RunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        models = None
        model_ids = data.validated_data.get("model_ids")
        if model_ids is not None:
            models = list(LLMModel.objects.active().filter(pk__in=model_ids))
            missing = sorted({str(pk) for pk in model_ids} - {str(model.pk) for model in models})
            if missing:
                raise ApplicationError(
                    "Unknown or inactive models.",
                    code="invalid",
                    details={"model_ids": [f"No active model with id {pk}." for pk in missing]},
                )
        # Whether this user may run this test is the service's rule (409 `not_runnable` when not).
        execution = execution_start(
            test_case=test_case,
            models=models,
            started_by=request.user,  # type: ignore[arg-type]
            request_id=getattr(request._request, "request_id", ""),
            repeats=data.validated_data["repeats"],
        )
        # The execution as it was created (pending), with its models: a run just created has no results, so
        # nothing was saved by the judge cascade yet (what with_judge_savings would annotate).
        execution.judge_calls_avoided = execution.judge_calls_made = 0  # type: ignore[attr-defined]
        execution.judge_calls_cost = None  # type: ignore[attr-defined]
        return Response(ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="The caller's executions (every execution for moderators)"),
    retrieve=extend_schema(summary="An execution with its live counters"),
)
@extend_schema(tags=["executions"])
class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """Executions are private to whoever started them, and to moderators; others get 404."""

    queryset = Execution.objects.prefetch_related("llm_models")
    serializer_class = ExecutionSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_class = ExecutionFilter
    search_fields: list[str] = []
    ordering_fields = ["created_at", "started_at", "completed_at", "status"]
    ordering = ["-created_at", "id"]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # What the cascade saved, per row, without a query per row (judge_calls_avoided, judge_cost_saved).
        return with_judge_savings(super().scope_queryset(queryset))

    @extend_schema(
        summary="Cancel an execution (no new provider calls start)",
        request=None,
        responses={200: ExecutionSerializer, 409: error_response("409")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        execution = execution_cancel(execution=self.get_object(), actor=request.user)  # type: ignore[arg-type]
        fresh = Execution.objects.prefetch_related("llm_models").get(pk=execution.pk)
        return Response(ExecutionSerializer(fresh).data)


@extend_schema(tags=["executions"])
class EstimateView(BaseAPIView):
    """POST /executions/estimate: what a run would cost, before it starts (SPEC §11)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [EstimateThrottle, *DEFAULT_THROTTLES]

    @extend_schema(
        summary="Estimate a run's tokens and cost before starting it",
        description=(
            "Tokens and USD cost of running `test_ids` (or the tests a run of `suite_id` would start for the caller) "
            "against `model_ids` (default: what a run takes, every "
            "active model, or only the active sandbox models when a test is not approved yet), "
            "`repeats` times each, per model and in total, with the judge's cost for `llm_judge` tests. "
            "Nothing runs. Unknown tests and tests the caller may not see are refused alike (400 naming "
            "`test_ids`); both or neither of `test_ids` and `suite_id` → 400 naming both; an unknown suite → 400 "
            "naming `suite_id`, one with no test to run → 400 `empty_suite`; unknown or inactive models → 400 "
            "naming `model_ids`; more than 10,000 evaluations "
            "→ 400 `too_many_evaluations`. The `estimate` throttle scope applies (an estimate may cover 10,000 "
            "evaluations)."
        ),
        request=EstimateRequestSerializer,
        responses={200: EstimateSerializer},
    )
    def post(self, request: Request) -> Response:
        data = EstimateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asked = data.validated_data
        options = {"model_ids": asked.get("model_ids"), "repeats": asked["repeats"]}
        if "suite_id" in asked:
            estimate = estimate_for_suite(user=request.user, suite_id=asked["suite_id"], **options)
        else:
            estimate = estimate_for_ids(user=request.user, test_ids=asked["test_ids"], **options)
        return Response(estimate.as_dict())


class _ResultListViewSet(mixins.ListModelMixin, BaseViewSet):
    """Results under a parent object the caller must be able to see (else 404), latest first."""

    queryset = TestResult.objects.all()
    serializer_class = TestResultSerializer
    filterset_class = TestResultFilter
    search_fields: list[str] = []
    ordering_fields = ["executed_at", "score", "latency_ms", "cost"]
    ordering = ["-executed_at", "id"]
    parent_kwarg = ""

    def parent_filter(self) -> dict[str, Any]:
        raise NotImplementedError

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no parent object
            return queryset.none()
        return TestResult.objects.visible_to(self.request.user).filter(**self.parent_filter())


@extend_schema(tags=["tests"])
@extend_schema_view(list=extend_schema(summary="Results of a test, latest first"))
class TestCaseResultViewSet(_ResultListViewSet):
    """GET /tests/{id}/results: every visible result of a test the caller may see."""

    __test__ = False

    def parent_filter(self) -> dict[str, Any]:
        queryset = TestCase.objects.visible_to(self.request.user)
        return {"test_case": get_object_or_404(queryset, pk=self.kwargs["pk"])}


@extend_schema(tags=["executions"])
@extend_schema_view(list=extend_schema(summary="Results of an execution, one per model and sample"))
class ExecutionResultViewSet(_ResultListViewSet):
    """GET /executions/{id}/results: the results of an execution the caller may see."""

    permission_classes = [permissions.IsAuthenticated]

    def parent_filter(self) -> dict[str, Any]:
        queryset = Execution.objects.visible_to(self.request.user)
        return {"execution": get_object_or_404(queryset, pk=self.kwargs["pk"])}
