"""The import service (SPEC §14): a file in one of the formats → tests, validated record by record with the
API's own rules, created in chunks so that any number of records fits in bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, reset_queries, transaction
from rest_framework import serializers

from accounts.models import User
from catalog.api.serializers import TestCaseWriteSerializer
from catalog.interchange import hf, inspect_ai, native, promptfoo
from catalog.interchange.base import LineError, ReadOptions, Record, file_error
from catalog.models import ModerationEvent, Tag, TestCase, TestCaseRevision
from catalog.services import event_row, revision_row, tag_slugs, test_case_approve
from openbench.exceptions import ApplicationError

Reader = Callable[[BinaryIO, ReadOptions], Iterator[Record]]
READERS: dict[str, Reader] = {
    "jsonl": native.read_jsonl,
    "csv": native.read_csv,
    "inspect": inspect_ai.read,
    "promptfoo": promptfoo.read,
    "hf": hf.read,
}
FORMATS = tuple(READERS)
CHUNK_SIZE = 500
# A report lists at most this many errors (the counts stay exact): a file of bad lines stays a short answer.
MAX_REPORTED_ERRORS = 1000


@dataclass
class ImportReport:
    """What an import did: tests created (or that would be, in a dry run), records refused and why."""

    created: int = 0
    failed: int = 0
    dry_run: bool = False
    errors: list[LineError] = field(default_factory=list)
    errors_truncated: bool = False

    def refuse(self, errors: list[LineError]) -> None:
        self.failed += 1
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(errors[: max(room, 0)])
        self.errors_truncated = self.errors_truncated or len(errors) > room

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "errors": [error.as_dict() for error in self.errors],
            "errors_truncated": self.errors_truncated,
        }


@dataclass
class _Valid:
    line: int
    index: int | None
    test_case: TestCase
    slugs: list[str]


def test_cases_import(
    *,
    stream: BinaryIO,
    fmt: str,
    author: User,
    column_map: dict[str, str] | None = None,
    prompt_template: str | None = None,
    dry_run: bool = False,
    approve: bool = False,
    max_records: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportReport:
    """Import the tests of a seekable binary file in format `fmt`, as `author`.

    The file is read twice: first as a whole (its format, its columns, its size), so that a file refused
    as a whole (ApplicationError naming `format`, `file`, `map`, `prompt_template`...) leaves nothing
    behind; then record by record. Each record is all or nothing: validated like POST /tests, then created
    with its tags, first revision and audit event (and, with `approve`, approved through the moderators'
    service) in a chunk of `chunk_size` records, never holding more than one chunk in memory.
    """
    reader = READERS.get(fmt)
    if reader is None:
        raise file_error(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.", field="format")
    if approve and not author.is_moderator:
        raise ApplicationError("Only moderators can approve imported tests.", code="permission_denied", status=403)
    if column_map and fmt != "hf":
        raise file_error("A column map applies to the hf format only.", field="map")
    if prompt_template and fmt != "promptfoo":
        raise file_error("A prompt template applies to the promptfoo format only.", field="prompt_template")
    options = ReadOptions(column_map=column_map or {}, prompt_template=prompt_template or None)
    _check_whole(stream, reader, options, max_records=max_records)

    report = ImportReport(dry_run=dry_run)
    serializer = TestCaseWriteSerializer()
    chunk: list[_Valid] = []
    for record in reader(stream, options):
        outcome = _validate(record, author, serializer) if not record.errors else record.errors
        if isinstance(outcome, list):
            report.refuse(outcome)
        elif dry_run:
            report.created += 1
        else:
            chunk.append(outcome)
            if len(chunk) >= chunk_size:
                _create(chunk, author=author, approve=approve, report=report)
                chunk = []
    if chunk:
        _create(chunk, author=author, approve=approve, report=report)
    return report


def _check_whole(stream: BinaryIO, reader: Reader, options: ReadOptions, *, max_records: int | None) -> None:
    start = stream.tell()
    count = 0
    try:
        for _ in reader(stream, options):
            count += 1
            if max_records is not None and count > max_records:
                raise file_error(f"The file has more than {max_records} records; split it.")
    except (RecursionError, ValueError, TypeError) as exc:
        # A reader's own checks raise ApplicationError; anything else means the file is not its format.
        raise file_error(f"The file cannot be read in this format ({type(exc).__name__}).") from None
    if count == 0:
        raise file_error("The file holds no records.")
    stream.seek(start)


def _messages(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key}: {_messages(item)}" for key, item in value.items())
    if isinstance(value, list):
        return " ".join(_messages(item) for item in value)
    return str(value)


def _validate(record: Record, author: User, serializer: TestCaseWriteSerializer) -> _Valid | list[LineError]:
    """The record as an unsaved test with its tags, checked by the API's serializer and the model's
    full_clean (the same rules as POST /tests), or its errors by field. One serializer validates every
    record, as a ListSerializer's child does: building its fields costs more than validating a record."""

    def error(message: str, name: str | None) -> LineError:
        return LineError(line=record.line, message=message, field=name, index=record.index)

    unknown = sorted(set(record.fields) - set(native.FIELDS))
    if unknown:
        return [error("unknown field", name) for name in unknown]
    try:
        data = dict(serializer.run_validation(record.fields))
    except serializers.ValidationError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return [
            error(_messages(messages), None if name == "non_field_errors" else name)
            for name, messages in detail.items()
        ]
    try:
        slugs = tag_slugs(data.pop("tags", []))
    except ApplicationError as exc:
        return [error(exc.message, "tags")]
    test_case = TestCase(created_by=author, status=TestCase.Status.PENDING, **data)
    try:
        # The fields' validators and clean() as in test_case_create, without the checks that cost a query per
        # record and cannot fail here: the new UUID's uniqueness, the author's row, and the check constraints
        # (they restate the field validators, and the database enforces them at insert anyway).
        test_case.full_clean(exclude=["created_by"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return [error(" ".join(messages), name) for name, messages in exc.message_dict.items()]
    return _Valid(line=record.line, index=record.index, test_case=test_case, slugs=slugs)


def _create(chunk: list[_Valid], *, author: User, approve: bool, report: ImportReport) -> None:
    if settings.DEBUG:
        # With DEBUG on (the embedded default) Django keeps the SQL of its last 9,000 queries, and a chunk's
        # INSERT is hundreds of kilobytes: memory would grow with the file, up to gigabytes.
        reset_queries()
    try:
        with transaction.atomic():
            _insert(chunk, author=author, approve=approve)
        report.created += len(chunk)
        return
    except (DatabaseError, ApplicationError):
        pass
    # Something validation could not know (a concurrent change, a value the database refuses): one by
    # one, so that one record does not sink its neighbours.
    for item in chunk:
        try:
            with transaction.atomic():
                _insert([item], author=author, approve=approve)
            report.created += 1
        except ApplicationError as exc:
            report.refuse([LineError(line=item.line, message=exc.message, index=item.index)])
        except DatabaseError:
            report.refuse([LineError(line=item.line, message="The database refused this record.", index=item.index)])


def _insert(chunk: list[_Valid], *, author: User, approve: bool) -> None:
    cases = [item.test_case for item in chunk]
    TestCase.objects.bulk_create(cases)
    slugs = {slug for item in chunk for slug in item.slugs}
    if slugs:
        Tag.objects.bulk_create([Tag(name=slug) for slug in sorted(slugs)], ignore_conflicts=True)
        tag_ids = dict(Tag.objects.filter(name__in=slugs).values_list("name", "pk"))
        through = TestCase.tags.through
        through.objects.bulk_create(
            [through(testcase_id=item.test_case.pk, tag_id=tag_ids[slug]) for item in chunk for slug in item.slugs]
        )
    TestCaseRevision.objects.bulk_create([revision_row(case, author=author) for case in cases])
    ModerationEvent.objects.bulk_create(
        [event_row(case, actor=author, action=ModerationEvent.Action.SUBMIT, from_status="") for case in cases]
    )
    if approve:
        # The one decision path (row lock, audit event, analytics signal), as the API's approve.
        for case in cases:
            test_case_approve(test_case=case, moderator=author, notes="Imported.")


test_cases_import.__test__ = False  # type: ignore[attr-defined]
