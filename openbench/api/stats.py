"""GET /api/v1/admin/stats: the numbers a moderator or admin checks first."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from catalog.models import LLMModel, TestCase
from evaluations.models import Execution, TestResult
from openbench.api.permissions import IsModerator
from openbench.api.viewsets import BaseAPIView

logger = logging.getLogger(__name__)

QUEUE_NAME = "evaluations"


def _counts_by(queryset: Any, field: str, choices: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(choices, 0)
    for row in queryset.order_by().values(field).annotate(n=Count("pk")):
        counts[row[field]] = row["n"]
    return counts


def _queue_stats() -> dict[str, Any]:
    """Depth and workers of the rq queue; None where unknown (no Redis, or Redis unreachable)."""
    if not settings.USE_RQ:
        return {"backend": "in_process", "depth": None, "workers": None}
    try:
        import django_rq
        from rq import Worker

        queue = django_rq.get_queue(QUEUE_NAME)
        return {"backend": "rq", "depth": queue.count, "workers": Worker.count(queue=queue)}
    except Exception:  # stats must answer even when Redis does not
        logger.warning("admin stats: the queue could not be read", exc_info=True)
        return {"backend": "rq", "depth": None, "workers": None}


def admin_stats() -> dict[str, Any]:
    """Counts across the whole platform (moderators see everything, so nothing is scoped)."""
    since = timezone.now() - timedelta(hours=24)
    tests = _counts_by(TestCase.objects.all(), "status", TestCase.Status.values)
    executions = _counts_by(Execution.objects.all(), "status", Execution.Status.values)
    users = _counts_by(User.objects.all(), "role", User.Role.values)
    return {
        "generated_at": timezone.now(),
        "users": {"total": sum(users.values()), "by_role": users},
        "tests": {"total": sum(tests.values()), "by_status": tests},
        "models": {"total": LLMModel.objects.count(), "active": LLMModel.objects.active().count()},
        "executions": {"total": sum(executions.values()), "by_status": executions},
        "results": {
            "total": TestResult.objects.count(),
            "last_24h": TestResult.objects.filter(executed_at__gte=since).count(),
        },
        "queue": _queue_stats(),
    }


class UserStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_role = serializers.DictField(child=serializers.IntegerField())


class TestStatsSerializer(serializers.Serializer):
    __test__ = False

    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="pending/approved/rejected/archived")


class ModelStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField()


class ExecutionStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="pending/running/completed/failed/cancelled"
    )


class ResultStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    last_24h = serializers.IntegerField()


class QueueStatsSerializer(serializers.Serializer):
    backend = serializers.ChoiceField(choices=["rq", "in_process"])
    depth = serializers.IntegerField(allow_null=True, help_text="Jobs waiting; null without rq.")
    workers = serializers.IntegerField(allow_null=True, help_text="rq workers listening; null without rq.")


class AdminStatsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    users = UserStatsSerializer()
    tests = TestStatsSerializer()
    models = ModelStatsSerializer()
    executions = ExecutionStatsSerializer()
    results = ResultStatsSerializer()
    queue = QueueStatsSerializer()


class AdminStatsView(BaseAPIView):
    """Platform counts for moderators and admins: users, tests, models, executions, results, queue."""

    permission_classes = [IsModerator]

    @extend_schema(tags=["moderation"], responses=AdminStatsSerializer, summary="Platform counts (moderators)")
    def get(self, request: Request) -> Response:
        return Response(AdminStatsSerializer(admin_stats()).data)
