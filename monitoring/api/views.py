"""/api/v1 suite runs, schedules and alerts (SPEC §12): parse, scope, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Suite
from monitoring.api import serializers
from monitoring.filters import AlertFilter
from monitoring.models import Alert, Schedule, SuiteRun
from monitoring.services import (
    alert_acknowledge,
    models_from_ids,
    schedule_create,
    schedule_delete,
    schedule_run_now,
    schedule_update,
    suite_run_start,
)
from openbench.api.permissions import IsModerator
from openbench.api.schema import error_response
from openbench.api.throttles import DEFAULT_THROTTLES, RunThrottle
from openbench.api.viewsets import BaseViewSet, ServiceWriteViewSet


def _run_response(run: SuiteRun) -> Response:
    fresh = SuiteRun.objects.prefetch_related("executions").get(pk=run.pk)
    return Response(serializers.SuiteRunSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["suites"])
class SuiteRunViewSet(BaseViewSet):
    """POST /suites/{id}/run: every suite is public to read; running it is any signed-in user's run."""

    queryset = Suite.objects.all()
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [RunThrottle, *DEFAULT_THROTTLES]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    @extend_schema(
        summary="Run a suite (answers at once; the executions run in the background)",
        description=(
            "Resolves the suite now to the approved tests the caller may see, and starts one execution per "
            "test over `model_ids` (default: every active model), each model sampled `repeats` times; "
            "charged to the caller like any run. A suite with no such test → 400 naming `suite`."
        ),
        request=serializers.SuiteRunRequestSerializer,
        responses={202: serializers.SuiteRunSerializer, 402: error_response("402"), 409: error_response("409")},
    )
    def run(self, request: Request, pk: str | None = None) -> Response:
        suite = self.get_object()
        data = serializers.SuiteRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model_ids = data.validated_data.get("model_ids")
        run = suite_run_start(
            suite=suite,
            models=models_from_ids(model_ids) if model_ids is not None else None,
            repeats=data.validated_data["repeats"],
            started_by=request.user,  # type: ignore[arg-type]
            request_id=getattr(request._request, "request_id", ""),
        )
        return _run_response(run)


@extend_schema_view(
    list=extend_schema(summary="List schedules (moderators)"),
    retrieve=extend_schema(summary="A schedule (moderators)"),
    create=extend_schema(
        summary="Schedule a suite (moderators)",
        request=serializers.ScheduleWriteSerializer,
        responses={201: serializers.ScheduleSerializer},
    ),
    partial_update=extend_schema(
        summary="Edit a schedule (moderators)",
        request=serializers.ScheduleWriteSerializer,
        responses={200: serializers.ScheduleSerializer},
    ),
    destroy=extend_schema(summary="Delete a schedule (moderators; its runs and alerts stay)"),
)
@extend_schema(tags=["schedules"])
class ScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ServiceWriteViewSet):
    """Schedules of suites, run by the platform: moderators and admins only."""

    queryset = Schedule.objects.all()
    serializer_class = serializers.ScheduleSerializer
    write_serializer_class = serializers.ScheduleWriteSerializer
    permission_classes = [IsModerator]
    filter_backends: list[Any] = []

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.prefetch_related("llm_models").order_by("created_at", "id")

    def service_create(self, data: dict[str, Any]) -> Schedule:
        return schedule_create(created_by=self.request.user, **data)  # type: ignore[arg-type]

    def service_update(self, instance: Schedule, data: dict[str, Any]) -> Schedule:
        return schedule_update(schedule=instance, **data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        schedule_delete(schedule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Run a schedule now, outside its timetable (moderators; charged to the platform)",
        request=None,
        responses={202: serializers.SuiteRunSerializer, 402: error_response("402"), 409: error_response("409")},
    )
    def run_now(self, request: Request, pk: str | None = None) -> Response:
        run = schedule_run_now(schedule=self.get_object(), started_by=request.user)  # type: ignore[arg-type]
        return _run_response(run)


@extend_schema(tags=["alerts"])
class AlertViewSet(mixins.ListModelMixin, BaseViewSet):
    """Drift alerts, newest first: moderators and admins only."""

    queryset = Alert.objects.all()
    serializer_class = serializers.AlertSerializer
    permission_classes = [IsModerator]
    filterset_class = AlertFilter
    filter_backends = [DjangoFilterBackend]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.order_by("-created_at", "id")

    @extend_schema(summary="List drift alerts (moderators; filters `model`, `acknowledged`)")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Acknowledge an alert (moderators)", request=None, responses={200: serializers.AlertSerializer}
    )
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = alert_acknowledge(alert=self.get_object(), user=request.user)  # type: ignore[arg-type]
        return Response(serializers.AlertSerializer(alert).data)
