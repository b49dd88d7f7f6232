"""Test-only URLs for the read-replica tests: the project's URLs plus one view that reads, writes and reads
again under `replica_reads()`, answering what it read. Never part of openbench.urls."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from catalog.models import LLMModel
from openbench.dbrouter import replica_reads


@replica_reads()
def read_write_read(request: HttpRequest, pk: str) -> JsonResponse:
    before = LLMModel.objects.get(pk=pk).display_name
    LLMModel.objects.filter(pk=pk).update(display_name="Renamed in this request")
    after = LLMModel.objects.get(pk=pk).display_name
    return JsonResponse({"before": before, "after": after})


urlpatterns = [
    path("_test/replica/<uuid:pk>", read_write_read),
    path("", include("openbench.urls")),
]
