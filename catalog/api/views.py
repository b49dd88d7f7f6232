"""/api/v1 tests, models and moderation: parse, scope to the caller, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api import serializers
from catalog.filters import LLMModelFilter, TestCaseFilter
from catalog.models import LLMModel, Suite, TestCase
from catalog.services import (
    llm_model_create,
    llm_model_deactivate,
    llm_model_update,
    test_case_approve,
    test_case_archive,
    test_case_create,
    test_case_reject,
    test_case_update,
)
from catalog.suites import suite_create, suite_delete, suite_update
from openbench.api.permissions import (
    IsAdminRoleOrReadOnly,
    IsModerator,
    IsModeratorOrReadOnly,
    IsOwnerOrModeratorForWrites,
)
from openbench.api.schema import error_response
from openbench.api.throttles import TestWriteThrottle
from openbench.api.viewsets import BaseViewSet, ServiceWriteViewSet

TEST_CASE_QUERYSET = TestCase.objects.prefetch_related("tags")


@extend_schema_view(
    list=extend_schema(summary="List the tests the caller may see"),
    retrieve=extend_schema(summary="A test"),
    create=extend_schema(summary="Submit a test (it starts pending)"),
    update=extend_schema(summary="Edit a test (author or moderator)"),
    partial_update=extend_schema(summary="Edit some fields of a test (author or moderator)"),
    destroy=extend_schema(summary="Archive a test (its results are kept)"),
)
@extend_schema(tags=["tests"])
class TestCaseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    """Tests as SPEC §2 lets the caller see them; a test they may not see is a 404."""

    __test__ = False

    queryset = TEST_CASE_QUERYSET
    permission_classes = [IsOwnerOrModeratorForWrites]
    # `search` is TestCaseFilter's (one bounded filter with an EXISTS on tags), not DRF's SearchFilter,
    # which joins the tags once per word.
    filterset_class = TestCaseFilter
    ordering_fields = ["created_at", "updated_at", "approved_at", "title", "category", "difficulty"]
    ordering = ["-created_at", "id"]

    def get_serializer_class(self) -> Any:
        if self.action in ("create", "update", "partial_update"):
            return serializers.TestCaseWriteSerializer
        return serializers.TestCaseSerializer

    def get_throttles(self) -> list[Any]:
        throttles = super().get_throttles()
        if self.action in ("create", "update", "partial_update"):
            throttles.insert(0, TestWriteThrottle())
        return throttles

    def _read(self, test_case: TestCase, *, status_code: int = status.HTTP_200_OK) -> Response:
        # Re-read with tags prefetched: the service's instance has the tags it set, not a prefetch.
        fresh = TEST_CASE_QUERYSET.get(pk=test_case.pk)
        return Response(serializers.TestCaseSerializer(fresh).data, status=status_code)

    @extend_schema(request=serializers.TestCaseWriteSerializer, responses={201: serializers.TestCaseSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = serializers.TestCaseWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test_case = test_case_create(author=request.user, **data.validated_data)  # type: ignore[arg-type]
        return self._read(test_case, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.TestCaseWriteSerializer,
        responses={200: serializers.TestCaseSerializer, 409: error_response("409")},
    )
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        test_case = self.get_object()
        data = serializers.TestCaseWriteSerializer(test_case, data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        test_case = test_case_update(test_case=test_case, editor=request.user, **data.validated_data)  # type: ignore[arg-type]
        return self._read(test_case)

    @extend_schema(
        request=serializers.TestCaseWriteSerializer,
        responses={200: serializers.TestCaseSerializer, 409: error_response("409")},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        test_case_archive(test_case=self.get_object(), actor=request.user)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List models (active ones unless is_active is given)"),
    retrieve=extend_schema(summary="A model"),
    create=extend_schema(summary="Register a model (admin)"),
    update=extend_schema(summary="Edit a model (admin)"),
    partial_update=extend_schema(summary="Edit some fields of a model (admin)"),
    destroy=extend_schema(summary="Deactivate a model (admin; its results are kept)"),
)
@extend_schema(tags=["models"])
class LLMModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    """The model registry: public to read, admins write."""

    queryset = LLMModel.objects.all()
    serializer_class = serializers.LLMModelSerializer
    permission_classes = [IsAdminRoleOrReadOnly]
    filterset_class = LLMModelFilter
    search_fields = ["name", "display_name", "provider_model_id", "description"]
    ordering_fields = ["name", "display_name", "provider", "created_at", "input_price_per_million"]
    ordering = ["display_name", "name"]

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset  # the registry is public (SPEC §2); config never leaves the serializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = llm_model_create(**data.validated_data)
        return Response(self.get_serializer(model).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        model = self.get_object()
        data = self.get_serializer(model, data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        model = llm_model_update(model=model, **data.validated_data)
        return Response(self.get_serializer(model).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        llm_model_deactivate(model=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["moderation"])
class ModerationViewSet(mixins.ListModelMixin, BaseViewSet):
    """The moderators' queue: pending tests, oldest first, and the approve/reject decisions."""

    queryset = TEST_CASE_QUERYSET
    serializer_class = serializers.TestCaseSerializer
    permission_classes = [IsModerator]
    filter_backends: list[Any] = []

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        pending = TestCase.objects.visible_to(self.request.user).filter(status=TestCase.Status.PENDING)
        return pending.prefetch_related("tags").order_by("created_at", "id")

    def _test_case(self, test_id: str) -> TestCase:
        queryset = TestCase.objects.visible_to(self.request.user)
        test_case: TestCase = get_object_or_404(queryset, pk=test_id)
        return test_case

    @extend_schema(summary="Pending tests, oldest first (moderators)")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Approve a pending test at the revision read (moderators)",
        request=serializers.ApproveSerializer,
        responses={200: serializers.TestCaseSerializer, 409: error_response("409")},
    )
    def approve(self, request: Request, test_id: str) -> Response:
        test_case = self._test_case(test_id)
        data = serializers.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test_case_approve(
            test_case=test_case,
            moderator=request.user,  # type: ignore[arg-type]
            notes=data.validated_data["notes"],
            revision=data.validated_data["revision"],
        )
        return Response(serializers.TestCaseSerializer(TEST_CASE_QUERYSET.get(pk=test_case.pk)).data)

    @extend_schema(
        summary="Reject a pending test at the revision read, with a reason (moderators)",
        request=serializers.RejectSerializer,
        responses={200: serializers.TestCaseSerializer, 409: error_response("409")},
    )
    def reject(self, request: Request, test_id: str) -> Response:
        test_case = self._test_case(test_id)
        data = serializers.RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test_case_reject(
            test_case=test_case,
            moderator=request.user,  # type: ignore[arg-type]
            reason=data.validated_data["reason"],
            revision=data.validated_data["revision"],
        )
        return Response(serializers.TestCaseSerializer(TEST_CASE_QUERYSET.get(pk=test_case.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="List suites"),
    retrieve=extend_schema(summary="A suite"),
    create=extend_schema(
        summary="Create a suite (moderators)",
        request=serializers.SuiteWriteSerializer,
        responses={201: serializers.SuiteSerializer},
    ),
    partial_update=extend_schema(
        summary="Edit a suite (moderators); a new selection is a new version",
        request=serializers.SuiteWriteSerializer,
        responses={200: serializers.SuiteSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a suite without schedules or runs (moderators)",
        responses={204: None, 409: error_response("409")},
    ),
)
@extend_schema(tags=["suites"])
class SuiteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ServiceWriteViewSet):
    """Suites (SPEC §12): anyone reads a suite, its explicit tests only as far as they may see them;
    moderators write."""

    queryset = Suite.objects.all()
    serializer_class = serializers.SuiteSerializer
    write_serializer_class = serializers.SuiteWriteSerializer
    permission_classes = [IsModeratorOrReadOnly]
    filter_backends: list[Any] = []

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        visible = Prefetch("tests", queryset=TestCase.objects.visible_to(self.request.user).only("pk"))
        return queryset.prefetch_related(visible, "tags").order_by("name", "id")

    def service_create(self, data: dict[str, Any]) -> Suite:
        return suite_create(created_by=self.request.user, **data)  # type: ignore[arg-type]

    def service_update(self, instance: Suite, data: dict[str, Any]) -> Suite:
        return suite_update(suite=instance, editor=self.request.user, **data)  # type: ignore[arg-type]

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        suite_delete(suite=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
