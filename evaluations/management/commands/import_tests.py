"""Import test cases from JSONL or CSV through catalog.services.test_case_create, one transaction per line."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from catalog.services import EDITABLE_FIELDS, test_case_approve, test_case_create
from openbench.exceptions import ApplicationError

# CSV cells hold text; these columns carry JSON (an expected answer may be a plain string, kept as is).
_JSON_COLUMNS = ("output_schema", "evaluation_config")
_BOOL_COLUMNS = ("is_public",)
_INT_COLUMNS = ("timeout_seconds",)


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
    """(line number, fields or the parse error) for every non-empty line/row."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if fmt == "jsonl":
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    yield number, ValueError(f"not valid JSON: {exc}")
                    continue
                yield number, value if isinstance(value, dict) else ValueError("each line must be a JSON object")
        else:
            reader = csv.DictReader(handle)
            for row in reader:
                number = reader.line_num
                try:
                    yield number, _from_csv(row)
                except ValueError as exc:
                    yield number, exc


def _from_csv(row: dict[str, str | None]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            raise ValueError("the row has more cells than the header")
        value = (raw or "").strip()
        if value == "" and key not in ("description", "system_prompt"):
            continue
        if key in _JSON_COLUMNS:
            try:
                fields[key] = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"{key}: not valid JSON: {exc}") from exc
        elif key == "expected_output":
            # JSON when it parses as an object/array/number/bool, else the text itself.
            try:
                fields[key] = json.loads(value)
            except ValueError:
                fields[key] = value
        elif key == "tags":
            fields[key] = [tag.strip() for tag in value.replace(";", ",").split(",") if tag.strip()]
        elif key in _BOOL_COLUMNS:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{key}: expected true or false, got {value!r}")
            fields[key] = value.lower() in ("true", "1", "yes")
        elif key in _INT_COLUMNS:
            try:
                fields[key] = int(value)
            except ValueError as exc:
                raise ValueError(f"{key}: expected a whole number, got {value!r}") from exc
        else:
            fields[key] = value
    return fields


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, ApplicationError):
        return exc.message
    return str(exc)


class Command(BaseCommand):
    help = "Import test cases from a .jsonl or .csv file; bad lines are reported and leave nothing behind."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--author", required=True, help="Email of the user recorded as the tests' author.")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Default: from the file's extension.")
        parser.add_argument("--approve", action="store_true", help="Approve each imported test (author must moderate).")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        fmt = options["format"] or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
        author = User.objects.filter(email__iexact=options["author"]).first()
        if author is None:
            raise CommandError(f"No user with email {options['author']!r}.")
        if options["approve"] and not author.is_moderator:
            raise CommandError("--approve needs an author who is a moderator or an admin.")

        imported = 0
        errors: list[str] = []
        for number, row in _rows(path, fmt):
            if isinstance(row, Exception):
                errors.append(f"line {number}: {row}")
                continue
            fields = {key: value for key, value in row.items() if key != "tags"}
            unknown = set(fields) - set(EDITABLE_FIELDS)
            if unknown:
                errors.append(f"line {number}: unknown fields {', '.join(sorted(unknown))}")
                continue
            tags = row.get("tags") or []
            if not isinstance(tags, list):
                errors.append(f"line {number}: tags must be a list")
                continue
            try:
                # One transaction per line: a line that fails (its approval included) leaves no test, tag,
                # revision or audit event behind. Approval is the moderators' service, as in the API.
                with transaction.atomic():
                    test_case = test_case_create(author=author, tags=tags, **fields)
                    if options["approve"]:
                        test_case_approve(test_case=test_case, moderator=author, notes="Imported.")
            except (ValidationError, ApplicationError, TypeError, ValueError) as exc:
                errors.append(f"line {number}: {_explain(exc)}")
                continue
            imported += 1
        for error in errors:
            self.stderr.write(error)
        self.stdout.write(f"Imported {imported} test(s); {len(errors)} line(s) rejected.")
        if errors:
            sys.exit(1)
