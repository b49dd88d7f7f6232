"""GET /api/v1/results/export (SPEC §14): the results a caller may see, streamed as CSV or JSON lines."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from evaluations.exports import CHUNK_SIZE, EXPORT_FORMATS, export_lines
from evaluations.filters import ResultExportFilter
from evaluations.models import TestResult
from openbench.api.throttles import DEFAULT_THROTTLES, ExportThrottle
from openbench.api.viewsets import BaseAPIView
from openbench.exceptions import ApplicationError

_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


class ResultExportView(BaseAPIView):
    """Everyone may export what they may read: anonymous callers the results of approved public tests,
    users those and their own tests' results, moderators all (TestResult.objects.visible_to)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ExportThrottle, *DEFAULT_THROTTLES]
    filterset_class = ResultExportFilter

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # `format` names the file format here, not one of DRF's renderers; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        tags=["results"],
        summary="Export the results the caller may see, as CSV or JSON lines (streamed)",
        description=(
            "One row per result (the shape of `export_results`), oldest first, filtered like the results lists "
            "and /executions. CSV cells that a spreadsheet would run as a formula are prefixed with `'`. "
            "An unknown `format` is a 400 naming `format`. Anonymous exports stop after "
            "RESULTS_EXPORT_ANONYMOUS_MAX_ROWS rows (the `X-Export-Row-Limit` header says so): sign in or filter. "
            "The `export` throttle scope applies (per user, or per address)."
        ),
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS), required=True),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line."),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORT_FORMATS:
            raise ApplicationError(
                f"Unknown format {fmt!r}; use csv or jsonl.",
                details={"format": [f"Choose one of: {', '.join(EXPORT_FORMATS)}."]},
            )
        visible = TestResult.objects.visible_to(request.user).select_related("test_case", "model")
        filterset = ResultExportFilter(request.query_params, queryset=visible, request=request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        results = filterset.qs.order_by("executed_at", "id")
        # Streaming the whole public table costs one anonymous request nothing and us a long scan: cap it.
        row_limit = 0 if request.user.is_authenticated else settings.RESULTS_EXPORT_ANONYMOUS_MAX_ROWS
        if row_limit:
            results = results[:row_limit]
        # iterator(): rows are read in chunks and written as they come, never held all at once.
        response = StreamingHttpResponse(
            export_lines(results.iterator(chunk_size=CHUNK_SIZE), fmt), content_type=_CONTENT_TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="results.{fmt}"'
        if row_limit:
            response["X-Export-Row-Limit"] = str(row_limit)
        return response
