"""Writes on the catalog: test cases with their revisions and moderation trail, and the model registry."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from catalog.models import LLMModel, ModerationEvent, Tag, TestCase, TestCaseRevision
from openbench.exceptions import ApplicationError
from providers import registry

# Fields a caller may set on a test; status, revision and moderation fields are the services' own.
EDITABLE_FIELDS = (
    "title",
    "description",
    "category",
    "difficulty",
    "language",
    "prompt",
    "system_prompt",
    "expected_output",
    "output_schema",
    "evaluation_type",
    "evaluation_config",
    "timeout_seconds",
    "is_public",
)


def tag_slugs(names: Iterable[str]) -> list[str]:
    """The tags' stored names, without repeats; ApplicationError naming `tags` for a name with no letters."""
    slugs: list[str] = []
    for name in names:
        slug = slugify(str(name))[:50]
        if not slug:
            raise ApplicationError(
                f"Tag {name!r} has no letters or digits.", details={"tags": [f"Invalid tag {name!r}."]}
            )
        if slug not in slugs:
            slugs.append(slug)
    return slugs


def _tags_from_names(names: Iterable[str]) -> list[Tag]:
    slugs = tag_slugs(names)
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=slugs)}
    return [existing.get(slug) or Tag.objects.get_or_create(name=slug)[0] for slug in slugs]


def revision_row(test_case: TestCase, *, author: User | None) -> TestCaseRevision:
    """The (unsaved) record of the test's current revision; bulk imports save many at once."""
    return TestCaseRevision(
        test_case=test_case, revision=test_case.revision, created_by=author, **test_case.reviewed_snapshot()
    )


def event_row(
    test_case: TestCase, *, actor: User | None, action: str, from_status: str, notes: str = ""
) -> ModerationEvent:
    """The (unsaved) audit-trail entry of a status change to the test's current status."""
    return ModerationEvent(
        test_case=test_case,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=test_case.status,
        revision=test_case.revision,
        notes=notes,
    )


def _record_revision(test_case: TestCase, *, author: User | None) -> None:
    revision_row(test_case, author=author).save(force_insert=True)


def _record_event(
    test_case: TestCase, *, actor: User | None, action: str, from_status: str, notes: str = ""
) -> ModerationEvent:
    event = event_row(test_case, actor=actor, action=action, from_status=from_status, notes=notes)
    event.save(force_insert=True)
    return event


def _refuse_past_the_pending_limit(author: User) -> None:
    """A contributor has at most TESTS_PENDING_MAX_PER_USER tests awaiting moderation, new ones and decided ones
    edited back into the queue (moderators, who import and approve, have no limit): 403 `pending_limit`. Counted
    under a lock on the author's row, so that writes sent at once cannot pass it together."""
    limit = settings.TESTS_PENDING_MAX_PER_USER
    if not limit or author.is_moderator:
        return
    User.objects.select_for_update(no_key=True).filter(pk=author.pk).values_list("pk", flat=True).first()
    pending = TestCase.objects.filter(created_by=author, status=TestCase.Status.PENDING).count()
    if pending >= limit:
        raise ApplicationError(
            f"You have {pending} tests awaiting moderation, the most a contributor may have at once. Wait for a "
            "moderator's decision, or delete the ones you no longer need.",
            code="pending_limit",
            status=403,
            details={"pending": pending, "max_pending": limit},
        )


@transaction.atomic
def test_case_create(*, author: User, tags: Iterable[str] = (), **fields: Any) -> TestCase:
    """Create a test in `pending`, validated as a whole, with its first revision recorded; refused past the
    author's pending limit (403 `pending_limit`)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")
    _refuse_past_the_pending_limit(author)
    test_case = TestCase(created_by=author, status=TestCase.Status.PENDING, **fields)
    test_case.full_clean()
    test_case.save()
    test_case.tags.set(_tags_from_names(tags))
    _record_revision(test_case, author=author)
    _record_event(test_case, actor=author, action=ModerationEvent.Action.SUBMIT, from_status="")
    return test_case


@transaction.atomic
def test_case_update(
    *, test_case: TestCase, editor: User, tags: Iterable[str] | None = None, **fields: Any
) -> TestCase:
    """Apply an edit. Changing what moves a score or a leaderboard slice (TestCase.REVIEWED_FIELDS) makes a
    new revision, and an approved or rejected test goes back to review; other fields keep the decision."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")
    # Lock the row and edit what is stored now, not what the caller read: a moderator's decision taken
    # meanwhile is neither overwritten by a stale status nor approves a revision it did not read.
    TestCase.objects.select_for_update().filter(pk=test_case.pk).values_list("pk").first()
    test_case.refresh_from_db()
    if test_case.status == TestCase.Status.ARCHIVED:
        raise ApplicationError("An archived test cannot be edited.", code="archived", status=409)
    before = test_case.reviewed_snapshot()
    for name, value in fields.items():
        setattr(test_case, name, value)
    scored_changed = test_case.reviewed_snapshot() != before
    from_status = test_case.status
    if scored_changed:
        test_case.revision += 1
        if test_case.status in (TestCase.Status.APPROVED, TestCase.Status.REJECTED):
            _refuse_past_the_pending_limit(editor)  # back in the queue: it counts like a new test
            test_case.status = TestCase.Status.PENDING
            test_case.approved_at = None
    test_case.full_clean()
    test_case.save()
    if tags is not None:
        test_case.tags.set(_tags_from_names(tags))
    if scored_changed:
        _record_revision(test_case, author=editor)
        _record_event(test_case, actor=editor, action=ModerationEvent.Action.REVISE, from_status=from_status)
    return test_case


def _test_case_decide(
    *,
    test_case: TestCase,
    moderator: User,
    approve: bool,
    notes: str,
    revision: int | None,
    require_notes: bool = False,
) -> TestCase:
    """The one moderation decision path: a moderator moves a pending test to approved or rejected.

    The API, the admin's actions and `import_tests --approve` all come here, through test_case_approve
    and test_case_reject. Call inside a transaction: the row is locked while the decision is taken.
    `revision` is the revision the moderator read: when the test has changed since, nothing is decided
    (409 stale_revision), so an author cannot swap the prompt between the reading and the approval.
    """
    verb = "approve" if approve else "reject"
    if not moderator.is_moderator:
        raise ApplicationError(f"Only moderators can {verb} tests.", code="permission_denied", status=403)
    if require_notes and not notes:
        raise ApplicationError(
            "A reason is required to reject a test.",
            code="reason_required",
            details={"reason": ["This field is required."]},
        )
    # Read the status and revision under a row lock: of two moderators deciding at once, the second gets
    # the 409, and an author's edit (which locks the row too) lands either before the check or after it.
    stored = TestCase.objects.select_for_update().filter(pk=test_case.pk).values_list("status", "revision").first()
    status, current = stored or (test_case.status, test_case.revision)
    if revision is not None and revision != current:
        raise ApplicationError(
            f"The test changed since you read it: you read revision {revision}, it is now at revision {current}.",
            code="stale_revision",
            status=409,
            details={"revision": revision, "current_revision": current},
        )
    if status != TestCase.Status.PENDING:
        raise ApplicationError(
            f"Only pending tests can be {verb}d; this one is {status}.", code="not_pending", status=409
        )
    test_case.status = TestCase.Status.APPROVED if approve else TestCase.Status.REJECTED
    test_case.moderated_by = moderator
    test_case.moderation_notes = notes
    test_case.approved_at = timezone.now() if approve else None
    test_case.save(update_fields=["status", "moderated_by", "moderation_notes", "approved_at", "updated_at"])
    _record_event(
        test_case,
        actor=moderator,
        action=ModerationEvent.Action.APPROVE if approve else ModerationEvent.Action.REJECT,
        from_status=TestCase.Status.PENDING,
        notes=notes,
    )
    return test_case


@transaction.atomic
def test_case_approve(
    *, test_case: TestCase, moderator: User, notes: str = "", revision: int | None = None
) -> TestCase:
    """Approve a pending test at the revision the moderator read (None: whatever it is now) and record the
    decision for the audit trail."""
    return _test_case_decide(test_case=test_case, moderator=moderator, approve=True, notes=notes, revision=revision)


@transaction.atomic
def test_case_reject(*, test_case: TestCase, moderator: User, reason: str, revision: int | None = None) -> TestCase:
    """Reject a pending test at the revision the moderator read; the reason is required so the author
    knows what to fix."""
    return _test_case_decide(
        test_case=test_case,
        moderator=moderator,
        approve=False,
        notes=(reason or "").strip(),
        revision=revision,
        require_notes=True,
    )


@transaction.atomic
def test_case_archive(*, test_case: TestCase, actor: User) -> TestCase:
    """Delete means archive: the test leaves every list, its results stay."""
    if test_case.status == TestCase.Status.ARCHIVED:
        return test_case
    from_status = test_case.status
    test_case.status = TestCase.Status.ARCHIVED
    test_case.save(update_fields=["status", "updated_at"])
    _record_event(test_case, actor=actor, action=ModerationEvent.Action.ARCHIVE, from_status=from_status)
    return test_case


# Fields an admin may set on a registry entry; health is derived from results, never set by hand.
LLM_MODEL_EDITABLE_FIELDS = (
    "name",
    "display_name",
    "provider",
    "provider_model_id",
    "description",
    "supports_structured_output",
    "supports_json_mode",
    "supports_function_calling",
    "context_length",
    "input_price_per_million",
    "output_price_per_million",
    "default_temperature",
    "default_max_tokens",
    "default_seed",
    "config",
    "is_active",
    "sandbox",
)


def _check_llm_model_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(LLM_MODEL_EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")


@transaction.atomic
def llm_model_create(**fields: Any) -> LLMModel:
    """Register a model, validated as a whole (unique name, known provider, prices, parameters)."""
    _check_llm_model_fields(fields)
    model = LLMModel(**fields)
    model.full_clean()
    model.save()
    return model


@transaction.atomic
def llm_model_update(*, model: LLMModel, **fields: Any) -> LLMModel:
    """Change a registry entry; results already recorded keep the prices they were costed at."""
    _check_llm_model_fields(fields)
    for name, value in fields.items():
        setattr(model, name, value)
    model.full_clean()
    model.save()
    return model


def llm_model_deactivate(*, model: LLMModel) -> LLMModel:
    """Delete means deactivate: the model runs no more tests, and its results stay in the analytics."""
    if model.is_active:
        model.is_active = False
        model.save(update_fields=["is_active", "updated_at"])
    return model


# Service names start with `test_case_`; without this, pytest collects them wherever a test imports them.
for _service in (test_case_create, test_case_update, test_case_approve, test_case_reject, test_case_archive):
    _service.__test__ = False  # type: ignore[union-attr]


# --- The model registry from what servers list (the sync_models command) ---

# Providers whose servers list what they can run; hosted vendors list far more than chat models.
SYNCABLE_PROVIDERS = ("mes", "ollama", "openai_compatible")


@dataclass
class ModelSyncReport:
    """Names of the catalog rows a sync created, updated or left alone."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _unique_model_name(base: str) -> str:
    # "meta-llama/Llama-3.1-8B" and "llama3:8b" keep their word boundaries instead of running together.
    base = slugify(re.sub(r"[/:.@]+", "-", base)).strip("-")[:90] or "model"
    name, suffix = base, 2
    while LLMModel.objects.filter(name=name).exists():
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def _model_on_server(model: LLMModel, base_url: str) -> bool:
    return str((model.config or {}).get("base_url") or "") == base_url


@transaction.atomic
def llm_models_sync(
    *, provider: str, listed: Sequence[Mapping[str, Any]], base_url: str = "", activate: bool = True
) -> ModelSyncReport:
    """Create a catalog row for each listed model not yet registered, and refresh what the server reports
    (context length, JSON support) on the rows that are. Prices, names and descriptions an admin set are
    kept. `base_url` (when not the settings one) goes into the new rows' config, so several servers of
    one provider can coexist; rows are matched on provider, provider model id and that base URL.
    """
    if provider not in SYNCABLE_PROVIDERS:
        raise ApplicationError(
            f"Models can be synced only from {', '.join(SYNCABLE_PROVIDERS)}, not {provider!r}.",
            code="provider_not_syncable",
        )
    problem = registry.base_url_problem(base_url)
    if problem:
        raise ApplicationError(f"base_url: {problem}", code="base_url_not_allowed", details={"base_url": [problem]})
    report = ModelSyncReport()
    existing = [model for model in LLMModel.objects.filter(provider=provider) if _model_on_server(model, base_url)]
    by_id = {model.provider_model_id: model for model in existing}
    for entry in listed:
        model_id = str(entry.get("id") or "").strip()
        if not model_id:
            continue
        reported: dict[str, Any] = {}
        if entry.get("context_length"):
            reported["context_length"] = int(entry["context_length"])
        if "supports_json" in entry:
            reported["supports_json_mode"] = bool(entry["supports_json"])
        model = by_id.get(model_id)
        if model is None:
            label = str(entry.get("name") or model_id)
            suffix = f" @ {base_url}" if base_url else ""
            model = LLMModel(
                name=_unique_model_name(f"{provider}-{model_id}"),
                display_name=f"{label}{suffix}"[:200],
                provider=provider,
                provider_model_id=model_id,
                description=f"Registered from the {provider} server's model list.",
                config={"base_url": base_url} if base_url else {},
                is_active=activate,
                **reported,
            )
            model.full_clean()
            model.save()
            by_id[model_id] = model
            report.created.append(model.name)
            continue
        changed = [name for name, value in reported.items() if getattr(model, name) != value]
        if changed:
            for name in changed:
                setattr(model, name, reported[name])
            model.full_clean()
            model.save(update_fields=[*changed, "updated_at"])
            report.updated.append(model.name)
        else:
            report.unchanged.append(model.name)
    return report
