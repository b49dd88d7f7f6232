"""Import tests from a file in one of the interchange formats (SPEC §14); exit 1 when any record failed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from catalog.interchange.hf import parse_map
from catalog.interchange.importing import FORMATS, test_cases_import
from openbench.exceptions import ApplicationError

_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".yaml": "promptfoo", ".yml": "promptfoo", ".parquet": "hf"}


class Command(BaseCommand):
    help = (
        "Import tests from FILE (jsonl, csv, inspect, promptfoo or hf); bad records are reported by line and "
        "leave nothing behind, a file refused as a whole creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--author", required=True, help="Email of the user recorded as the tests' author.")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the extension (.jsonl, .csv, .yaml).")
        parser.add_argument("--map", default="", help="hf: prompt=COL,expected=COL[,category=COL,title=COL,...]")
        parser.add_argument("--prompt-template", default=None, help="promptfoo: the template vars fill.")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; create nothing.")
        parser.add_argument("--approve", action="store_true", help="Approve each imported test (author must moderate).")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        fmt = options["format"] or _BY_SUFFIX.get(path.suffix.lower())
        if fmt is None:
            raise CommandError(f"Give --format: the extension {path.suffix!r} does not say ({', '.join(FORMATS)}).")
        author = User.objects.filter(email__iexact=options["author"]).first()
        if author is None:
            raise CommandError(f"No user with email {options['author']!r}.")
        if options["approve"] and not author.is_moderator:
            raise CommandError("--approve needs an author who is a moderator or an admin.")
        try:
            with path.open("rb") as stream:
                report = test_cases_import(
                    stream=stream,
                    fmt=fmt,
                    author=author,
                    column_map=parse_map(options["map"]),
                    prompt_template=options["prompt_template"],
                    dry_run=options["dry_run"],
                    approve=options["approve"],
                )
        except ApplicationError as exc:
            field = next(iter(exc.details), "")
            raise CommandError(f"{field}: {exc.message}" if field else exc.message) from None
        for error in report.errors:
            self.stderr.write(str(error))
        if report.errors_truncated:
            self.stderr.write("(more errors not shown)")
        verb = "Would import" if report.dry_run else "Imported"
        self.stdout.write(f"{verb} {report.created} test(s); {report.failed} line(s) rejected.")
        if report.failed:
            sys.exit(1)
