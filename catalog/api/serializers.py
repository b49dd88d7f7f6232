"""Shapes of /api/v1 tests, models and moderation requests. Serializers check shape; services decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import LLMModel, Suite, TestCase
from catalog.services import EDITABLE_FIELDS, LLM_MODEL_EDITABLE_FIELDS
from openbench.api.fields import JSONField
from providers import registry

# What the services own on a test: moderation state and revision.
MODERATION_FIELDS = ["status", "moderated_by", "moderation_notes", "approved_at", "revision"]


class TestCaseSerializer(serializers.ModelSerializer[TestCase]):
    """A test case as read (SPEC §3)."""

    __test__ = False

    tags: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    expected_output = JSONField(allow_null=True, help_text="Any JSON value.")
    output_schema = JSONField(allow_null=True, help_text="A JSON Schema (draft 2020-12) or null.")
    evaluation_config = JSONField(help_text="Options of the evaluation type.")

    class Meta:
        model = TestCase
        fields = ["id", *EDITABLE_FIELDS, "tags", *MODERATION_FIELDS, "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class TestCaseWriteSerializer(serializers.ModelSerializer[TestCase]):
    """What a client may send to create or edit a test; status, revision and moderation are the services'."""

    __test__ = False

    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=20, help_text="Free-form labels."
    )
    expected_output = JSONField(required=False, allow_null=True, help_text="Any JSON value.")
    output_schema = JSONField(required=False, allow_null=True, help_text="A JSON Schema or null.")
    evaluation_config = JSONField(required=False, help_text="A JSON object; keys depend on the type.")

    class Meta:
        model = TestCase
        fields = [*EDITABLE_FIELDS, "tags"]
        extra_kwargs: dict[str, Any] = {"title": {"max_length": 200}}


class LLMModelSerializer(serializers.ModelSerializer[LLMModel]):
    """A registry entry. `config` is write-only: adapter options may hold credentials or internal URLs."""

    config = JSONField(write_only=True, required=False, help_text="Adapter options (e.g. base_url); never returned.")

    class Meta:
        model = LLMModel
        fields = [
            "id",
            *LLM_MODEL_EDITABLE_FIELDS,
            "health_status",
            "health_checked_at",
            "created_at",
            "updated_at",
        ]
        # `sandbox` (SPEC §11) is an admin's choice like the rest of the registry: writes here are admin-only.
        read_only_fields = ["id", "health_status", "health_checked_at", "created_at", "updated_at"]
        # Uniqueness is the service's full_clean() to decide, with a field error on `name`.
        extra_kwargs: dict[str, Any] = {"name": {"validators": []}}

    def validate_config(self, value: Any) -> Any:
        # The model's clean() refuses it too; here the error names the key: details {"config": {"base_url": [...]}}.
        problem = registry.base_url_problem(value.get("base_url")) if isinstance(value, dict) else None
        if problem:
            raise serializers.ValidationError({"base_url": [problem]})
        return value


REVISION_HELP = (
    "The revision the moderator read (the test's `revision`). When the test has changed since, the answer "
    "is 409 stale_revision and nothing is decided. Optional for older clients: without it the decision "
    "applies to the current revision."
)


class ApproveSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    revision = serializers.IntegerField(required=False, min_value=1, default=None, help_text=REVISION_HELP)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, help_text="Why, so the author knows what to fix.")
    revision = serializers.IntegerField(required=False, min_value=1, default=None, help_text=REVISION_HELP)


# A suite names at most this many tests explicitly; bigger sets are what the category/tags filter is for.
SUITE_MAX_TEST_IDS = 1000
# The other limits of a suite's write, shared with the pages' form (monitoring.forms.SuiteForm).
SUITE_MAX_TAGS = 20
SUITE_TAG_MAX_LENGTH = 50
SUITE_DESCRIPTION_MAX_LENGTH = 5000


class SuiteSerializer(serializers.ModelSerializer[Suite]):
    """A suite as read (SPEC §12). `test_ids` are its explicit tests the caller may see; the view prefetches
    them through `visible_to`."""

    test_ids = serializers.SerializerMethodField()
    tags: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Suite
        fields = [
            "id",
            "name",
            "description",
            "version",
            "test_ids",
            "category",
            "tags",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_test_ids(self, suite: Suite) -> list[str]:
        return sorted(str(test.pk) for test in suite.tests.all())


class SuiteWriteSerializer(serializers.Serializer):
    """What a moderator sends to create or edit a suite."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=SUITE_DESCRIPTION_MAX_LENGTH)
    test_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=SUITE_MAX_TEST_IDS, help_text="Explicit tests."
    )
    category = serializers.SlugField(required=False, allow_blank=True, max_length=64)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=SUITE_TAG_MAX_LENGTH),
        required=False,
        max_length=SUITE_MAX_TAGS,
        help_text="Tests carrying all of these.",
    )
