"""POST /api/v1/tests/import (SPEC §14): moderators upload a test file in one of the interchange formats."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.interchange.hf import parse_map
from catalog.interchange.importing import FORMATS, MAX_REPORTED_ERRORS, test_cases_import
from openbench.api.exceptions import RequestTooLarge
from openbench.api.permissions import IsModerator
from openbench.api.schema import error_response
from openbench.api.viewsets import BaseAPIView


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file (at most IMPORT_MAX_BYTES, IMPORT_MAX_RECORDS records).")
    format = serializers.ChoiceField(choices=FORMATS)
    map = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=1000, help_text="hf: prompt=COL,expected=COL[,...]"
    )
    prompt_template = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=20_000, help_text="promptfoo: the template."
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Validate only; create nothing.")
    approve = serializers.BooleanField(required=False, default=False, help_text="Approve every imported test.")


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line; for promptfoo, the line the test starts on.")
    field = serializers.CharField(allow_null=True, help_text="The field or column at fault, when one is.")
    message = serializers.CharField()
    index = serializers.IntegerField(required=False, help_text="promptfoo only: the test's 1-based position.")


# Built inline: a Serializer subclass cannot declare a field named `errors` (its own property).
ImportReportSerializer = inline_serializer(
    name="ImportReport",
    fields={
        "created": serializers.IntegerField(help_text="Tests created (in a dry run: that would be created)."),
        "failed": serializers.IntegerField(help_text="Records refused; each left nothing behind."),
        "dry_run": serializers.BooleanField(),
        "errors": ImportErrorSerializer(many=True, help_text=f"At most {MAX_REPORTED_ERRORS}, in file order."),
        "errors_truncated": serializers.BooleanField(help_text="More errors than listed."),
    },
)


class TestImportView(BaseAPIView):
    """Moderators and admins import tests; each record is all or nothing, a bad file creates nothing."""

    __test__ = False

    permission_classes = [IsModerator]
    parser_classes = [MultiPartParser, FormParser]

    def max_body_bytes(self) -> int | None:
        # The file plus the multipart envelope and the small fields around it.
        return settings.IMPORT_MAX_BYTES + 64 * 1024

    @extend_schema(
        tags=["tests"],
        summary="Import tests from a file (moderators)",
        description=(
            "Formats: `jsonl`/`csv` (our own fields), `inspect` (Inspect AI samples), `promptfoo` (a tests YAML; "
            "template from `prompt_template` or the file's one `prompts:` entry), `hf` (JSON lines or Parquet "
            "with `map`). Each record is validated as POST /tests and created with nothing else, or refused and "
            "listed in `errors` by line. A request refused as a whole (unknown format, a file that is not its "
            "format, a map naming a missing column, a YAML syntax error, more than IMPORT_MAX_RECORDS records) "
            "is a 400 naming the field and creates nothing; a file over IMPORT_MAX_BYTES is a 413."
        ),
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: ImportReportSerializer, 413: error_response("413")},
    )
    def post(self, request: Request) -> Response:
        data = ImportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise RequestTooLarge(f"The file is larger than {settings.IMPORT_MAX_BYTES} bytes.")
        report = test_cases_import(
            stream=upload,
            fmt=data.validated_data["format"],
            author=request.user,  # type: ignore[arg-type]
            column_map=parse_map(data.validated_data["map"]),
            prompt_template=data.validated_data["prompt_template"] or None,
            dry_run=data.validated_data["dry_run"],
            approve=data.validated_data["approve"],
            max_records=settings.IMPORT_MAX_RECORDS,
        )
        return Response(report.as_dict())
