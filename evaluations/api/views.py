"""/api/v1/executions: the caller's executions (all of them for moderators), their results, cancel."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import TestCase
from evaluations.api.serializers import ExecutionSerializer, TestResultSerializer
from evaluations.filters import ExecutionFilter, TestResultFilter
from evaluations.models import Execution, TestResult
from evaluations.services import execution_cancel
from openbench.api.schema import error_response
from openbench.api.viewsets import BaseViewSet


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
@extend_schema_view(list=extend_schema(summary="Results of an execution, one per model"))
class ExecutionResultViewSet(_ResultListViewSet):
    """GET /executions/{id}/results: the results of an execution the caller may see."""

    permission_classes = [permissions.IsAuthenticated]

    def parent_filter(self) -> dict[str, Any]:
        queryset = Execution.objects.visible_to(self.request.user)
        return {"execution": get_object_or_404(queryset, pk=self.kwargs["pk"])}
