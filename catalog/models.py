"""The model registry and the test cases, with their revisions and moderation trail."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q

from catalog.validation import cascade_errors, evaluation_config_errors, output_schema_errors
from providers import registry


class LLMModelQuerySet(models.QuerySet["LLMModel"]):
    def active(self) -> LLMModelQuerySet:
        return self.filter(is_active=True)

    def sandbox(self) -> LLMModelQuerySet:
        """Models an admin chose for tests not yet approved (SPEC §11): cheap, so a pending test cannot drain
        an expensive model."""
        return self.filter(sandbox=True)


def provider_choices() -> list[tuple[str, str]]:
    """Every provider with a registered adapter, read when the choices are used, so adding a provider
    needs no migration here (migration 0003 refers to this function by name)."""
    return registry.provider_choices()


class LLMModel(models.Model):
    """A model that tests run against, reached through one provider adapter."""

    # The built-in providers as constants (LLMModel.Provider.MOCK), made from the providers registry.
    Provider = models.TextChoices(  # type: ignore[call-overload]
        "Provider", [(name.upper(), (name, label)) for name, label in registry.provider_choices()]
    )

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        DOWN = "down", "Down"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True, help_text="Stable short name, e.g. gpt-4o-mini.")
    display_name = models.CharField(max_length=200)
    # Accepts whatever providers/registry.py serves at validation time, built-in or added later.
    provider = models.CharField(max_length=32, choices=provider_choices)
    provider_model_id = models.CharField(max_length=200, help_text="The id the provider's API expects.")
    description = models.TextField(blank=True)
    supports_structured_output = models.BooleanField(default=False)
    supports_json_mode = models.BooleanField(default=False)
    supports_function_calling = models.BooleanField(default=False)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    input_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    output_price_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    default_temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    default_max_tokens = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(1)])
    default_seed = models.BigIntegerField(null=True, blank=True)
    config = models.JSONField(
        default=dict, blank=True, help_text="Adapter options, e.g. base_url for one of several compatible servers."
    )
    is_active = models.BooleanField(default=True)
    sandbox = models.BooleanField(
        default=False, help_text="Tests that are not approved yet may run on this model (choose cheap ones)."
    )
    health_status = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LLMModelQuerySet.as_manager()

    class Meta:
        db_table = "models"
        ordering = ["display_name", "name"]
        verbose_name = "LLM model"
        constraints = [
            models.CheckConstraint(
                condition=Q(input_price_per_million__gte=0) & Q(output_price_per_million__gte=0),
                name="model_prices_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(default_temperature__gte=0) & Q(default_temperature__lte=2), name="model_temperature_range"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name

    def clean(self) -> None:
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "Must be a JSON object."})
        # A provider's key follows the base URL (SPEC §10 "Models"): only hosts the operator named.
        problem = registry.base_url_problem(self.config.get("base_url"))
        if problem:
            raise ValidationError({"config": f"base_url: {problem}"})

    @property
    def generation_parameters(self) -> dict[str, Any]:
        """The parameters a run uses by default; executions snapshot these."""
        return {
            "temperature": self.default_temperature,
            "max_tokens": self.default_max_tokens,
            "seed": self.default_seed,
        }


class Tag(models.Model):
    """A free-form label on tests, kept as rows so every database can filter on it."""

    name = models.SlugField(max_length=50, unique=True)

    class Meta:
        db_table = "tags"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# A search is at most this many words and characters (SPEC §10 "Search"); longer ones are a 400 naming
# `search` (catalog.filters), so every search is one bounded WHERE clause.
SEARCH_MAX_WORDS = 32
SEARCH_MAX_LENGTH = 256
# The text fields a search looks at, besides the tags' names.
SEARCH_FIELDS = ("title", "description", "category", "prompt")


class TestCaseQuerySet(models.QuerySet["TestCase"]):
    def search(self, text: str) -> TestCaseQuerySet:
        """Tests where every word appears in a searched field or a tag name (case-insensitive).

        One filter for all the words: per word an OR over the text fields and an EXISTS on the tags,
        never a join on tags, so rows are not multiplied (no DISTINCT needed) and the plan does not grow
        with the number of tags. The caller bounds the words (SEARCH_MAX_WORDS, SEARCH_MAX_LENGTH).
        """
        condition = Q()
        for word in text.split():
            tag_ids = Tag.objects.filter(name__icontains=word).values("pk")
            tagged = TestCase.tags.through.objects.filter(testcase_id=OuterRef("pk"), tag_id__in=tag_ids)
            match = Q(Exists(tagged))
            for field in SEARCH_FIELDS:
                match |= Q(**{f"{field}__icontains": word})
            condition &= match
        return self.filter(condition) if condition else self

    def live(self) -> TestCaseQuerySet:
        """Not archived."""
        return self.exclude(status=TestCase.Status.ARCHIVED)

    def approved(self) -> TestCaseQuerySet:
        return self.filter(status=TestCase.Status.APPROVED)

    def publicly_listed(self) -> TestCaseQuerySet:
        return self.filter(status=TestCase.Status.APPROVED, is_public=True)

    def visible_to(self, user: Any) -> TestCaseQuerySet:
        """The one visibility rule (SPEC §2): approved public tests, one's own tests, all for moderators."""
        if user is not None and user.is_authenticated and getattr(user, "is_moderator", False):
            return self.all()
        public = Q(status=TestCase.Status.APPROVED, is_public=True)
        if user is not None and user.is_authenticated:
            return self.filter(public | Q(created_by=user))
        return self.filter(public)

    def in_suite(self, suite: Suite) -> TestCaseQuerySet:
        """Tests a suite selects: its explicit tests, plus those matching its category and every one of its
        tags when it has such a filter. EXISTS per tag, no join, so no row is repeated."""
        selected = Q(pk__in=suite.tests.through.objects.filter(suite_id=suite.pk).values("testcase_id"))
        tag_ids = list(suite.tags.values_list("pk", flat=True))
        if suite.category or tag_ids:
            matching = Q(category=suite.category) if suite.category else Q()
            for tag_id in tag_ids:
                matching &= Q(Exists(TestCase.tags.through.objects.filter(testcase_id=OuterRef("pk"), tag_id=tag_id)))
            selected |= matching
        return self.filter(selected)

    def runnable_by(self, user: Any) -> TestCaseQuerySet:
        """Approved tests anyone may run, plus a user's own (non-archived) tests."""
        if user is None or not user.is_authenticated:
            return self.none()
        if getattr(user, "is_moderator", False):
            return self.live()
        return self.filter(Q(status=TestCase.Status.APPROVED, is_public=True) | Q(created_by=user)).live()


class TestCase(models.Model):
    """A prompt with its expected answer and how to judge an answer; moderated before it counts."""

    __test__ = False  # not a pytest test class

    class Difficulty(models.TextChoices):
        EASY = "easy", "Easy"
        MEDIUM = "medium", "Medium"
        HARD = "hard", "Hard"

    class EvaluationType(models.TextChoices):
        EXACT_MATCH = "exact_match", "Exact match"
        STRUCTURED_MATCH = "structured_match", "Structured match"
        LLM_JUDGE = "llm_judge", "LLM judge"
        CUSTOM = "custom", "Custom scorer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ARCHIVED = "archived", "Archived"

    # What a result is scored against; the runner snapshots these per revision.
    SCORED_FIELDS = (
        "prompt",
        "system_prompt",
        "expected_output",
        "output_schema",
        "evaluation_type",
        "evaluation_config",
    )
    # Everything that moves a score or a leaderboard slice (SPEC §10): changing any of these makes a new
    # revision, and an approved or rejected test goes back to review. The timeout decides which answers
    # arrive at all, category and difficulty which slice they count in. Title, description, tags,
    # language and visibility are not reviewed again (tags and language slice nothing on the leaderboard;
    # visibility only removes a test from it).
    REVIEWED_FIELDS = (*SCORED_FIELDS, "timeout_seconds", "category", "difficulty")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.SlugField(max_length=64)
    tags = models.ManyToManyField(Tag, blank=True, related_name="test_cases")
    difficulty = models.CharField(max_length=8, choices=Difficulty.choices, default=Difficulty.MEDIUM)
    language = models.CharField(max_length=16, default="en")
    prompt = models.TextField()
    system_prompt = models.TextField(blank=True)
    expected_output = models.JSONField(null=True, blank=True, help_text="Any JSON value.")
    output_schema = models.JSONField(null=True, blank=True, help_text="A JSON Schema (draft 2020-12).")
    evaluation_type = models.CharField(max_length=32, choices=EvaluationType.choices)
    evaluation_config = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(300)]
    )
    is_public = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    moderated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderated_tests"
    )
    moderation_notes = models.TextField(blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="test_cases"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TestCaseQuerySet.as_manager()

    class Meta:
        db_table = "test_cases"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="test_case_status_created"),
            models.Index(fields=["category", "status"], name="test_case_category_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=1) & Q(timeout_seconds__lte=300), name="test_case_timeout_range"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "archived"]), name="test_case_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(difficulty__in=["easy", "medium", "hard"]), name="test_case_difficulty_valid"
            ),
            models.CheckConstraint(
                condition=Q(evaluation_type__in=["exact_match", "structured_match", "llm_judge", "custom"]),
                name="test_case_evaluation_type_valid",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="test_case_revision_positive"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        schema_errors = output_schema_errors(self.output_schema)
        if schema_errors:
            errors["output_schema"] = schema_errors
        if self.evaluation_type == self.EvaluationType.STRUCTURED_MATCH and self.expected_output is None:
            errors.setdefault("expected_output", []).append("Structured match needs an expected output.")
        if self.evaluation_type == self.EvaluationType.EXACT_MATCH and self.expected_output is None:
            errors.setdefault("expected_output", []).append("Exact match needs an expected output.")
        config_errors = evaluation_config_errors(self.evaluation_type, self.evaluation_config)
        config_errors += cascade_errors(self.evaluation_type, self.evaluation_config, self.expected_output)
        if config_errors:
            errors["evaluation_config"] = config_errors
        if errors:
            raise ValidationError(errors)

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED

    def scored_snapshot(self) -> dict[str, Any]:
        """What a result is scored against; stored per revision."""
        return {field: getattr(self, field) for field in self.SCORED_FIELDS}

    def reviewed_snapshot(self) -> dict[str, Any]:
        """What a moderator approves; stored per revision, so a decision names exactly what was read."""
        return {field: getattr(self, field) for field in self.REVIEWED_FIELDS}


class TestCaseRevision(models.Model):
    """What a test looked like at one revision, so old results stay explainable."""

    __test__ = False

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    prompt = models.TextField()
    system_prompt = models.TextField(blank=True)
    expected_output = models.JSONField(null=True, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    evaluation_type = models.CharField(max_length=32, choices=TestCase.EvaluationType.choices)
    evaluation_config = models.JSONField(default=dict, blank=True)
    # Recorded since these fields are reviewed too (SPEC §10); empty on revisions made before that.
    timeout_seconds = models.PositiveSmallIntegerField(null=True, blank=True)
    category = models.SlugField(max_length=64, blank=True)
    difficulty = models.CharField(max_length=8, choices=TestCase.Difficulty.choices, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "test_case_revisions"
        ordering = ["test_case", "-revision"]
        constraints = [models.UniqueConstraint(fields=["test_case", "revision"], name="test_case_revision_unique")]

    def __str__(self) -> str:
        return f"{self.test_case_id} r{self.revision}"


class ModerationEvent(models.Model):
    """One moderation decision or status change: who, when, what, and why. Never edited."""

    class Action(models.TextChoices):
        SUBMIT = "submit", "Submitted"
        REVISE = "revise", "New revision submitted"
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        ARCHIVE = "archive", "Archived"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="moderation_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16, choices=TestCase.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=TestCase.Status.choices)
    revision = models.PositiveIntegerField()
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "moderation_events"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["test_case", "created_at"], name="moderation_event_test_created")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} r{self.revision} by {self.actor}"


class Suite(models.Model):
    """A named, versioned set of tests (SPEC §12): explicit tests and/or a filter by category and tags,
    resolved at run time (catalog.suites.suite_resolve_tests), so a run records what it actually ran."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Bumped by the services whenever what the suite selects changes (tests, category, tags).
    version = models.PositiveIntegerField(default=1)
    tests = models.ManyToManyField(TestCase, blank=True, related_name="suites", help_text="Explicit tests.")
    category = models.SlugField(max_length=64, blank=True, help_text="Also every approved test of this category.")
    tags = models.ManyToManyField(
        Tag, blank=True, related_name="suites", help_text="Also every approved test carrying all these tags."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "suites"
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(version__gte=1), name="suite_version_positive")]

    def __str__(self) -> str:
        return self.name


class PendingTestCase(TestCase):
    """The moderators' queue in the admin: pending tests, oldest first."""

    class Meta:
        proxy = True
        ordering = ["created_at"]
        verbose_name = "pending test case"
        verbose_name_plural = "pending queue"
