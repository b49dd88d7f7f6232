"""Base classes every /api/v1 view builds on: one place for scoping, throttles, schema and body size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import status, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from openbench.api import schema as _schema  # registers the OpenAPI extensions
from openbench.api.exceptions import RequestTooLarge
from openbench.api.throttles import DEFAULT_THROTTLES


class ApiViewMixin:
    """Throttles, the documented error envelope, and the body-size limit for JSON.

    Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE only when it parses forms or reads `request.body`;
    DRF's JSON parser reads the stream directly, so the limit is checked here from Content-Length.
    """

    throttle_classes: Sequence[type[BaseThrottle]] = DEFAULT_THROTTLES
    schema = _schema.OpenBenchAutoSchema()

    def max_body_bytes(self) -> int | None:
        """The largest body this view takes (an upload endpoint allows more than JSON ones)."""
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        limit = self.max_body_bytes()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestTooLarge()
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


class BaseAPIView(ApiViewMixin, APIView):
    """For endpoints that are not about one kind of object (login, stats)."""


class BaseViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Scopes every queryset to the caller: by default through the model's `visible_to(user)`.

    Objects outside the scope are 404s, never 403s: a caller must not learn that they exist.
    Subclasses with another rule override `scope_queryset`.
    """

    # Ids are UUIDs; anything else does not match the route and gets the 404 envelope.
    lookup_value_regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        visible_to = getattr(queryset, "visible_to", None)
        if visible_to is None:
            raise NotImplementedError(f"{type(self).__name__} must define scope_queryset().")
        result: QuerySet[Any] = visible_to(self.request.user)
        return result

    def get_queryset(self) -> QuerySet[Any]:
        return self.scope_queryset(super().get_queryset())

    def get_object(self) -> Any:
        # Filters and search narrow lists; a detail lookup sees the whole scoped set (an archived test
        # or a deactivated model is still readable by id), and actions may use another model's filters.
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = get_object_or_404(self.get_queryset(), **{self.lookup_field: lookup})
        self.check_object_permissions(self.request, obj)
        return obj


class ServiceWriteViewSet(BaseViewSet):
    """Create and partial update through a service, where what a client sends differs from what it reads:
    `write_serializer_class` checks the shape, `service_create` / `service_update` decide, and the answer is
    the object read again through the caller's scope with `serializer_class`. Document the write serializer
    on `create` and `partial_update` with `extend_schema_view`."""

    write_serializer_class: type[BaseSerializer[Any]]

    def service_create(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define service_create().")

    def service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define service_update().")

    def read_response(self, instance: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.scope_queryset(type(instance).objects.all()).get(pk=instance.pk)
        return Response(self.get_serializer(fresh).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.write_serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        return self.read_response(self.service_create(data.validated_data), status_code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        data = self.write_serializer_class(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return self.read_response(self.service_update(instance, data.validated_data))
