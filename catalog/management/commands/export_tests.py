"""Export tests as our JSON lines, Inspect AI samples or a promptfoo tests YAML (SPEC §14), streamed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandParser

from catalog.interchange.exporting import EXPORT_FORMATS, export_chunks
from catalog.models import TestCase


class Command(BaseCommand):
    help = "Export tests (approved ones by default) as jsonl, inspect or promptfoo; import_tests reads them back."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl")
        parser.add_argument(
            "--status", choices=[*TestCase.Status.values, "all"], default="approved", help="Default: approved."
        )
        parser.add_argument("--category", help="Only this category.")
        parser.add_argument("--output", "-o", type=Path, help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        tests = TestCase.objects.prefetch_related("tags")
        if options["status"] != "all":
            tests = tests.filter(status=options["status"])
        if options["category"]:
            tests = tests.filter(category=options["category"])
        output: IO[str] = options["output"].open("w", encoding="utf-8") if options["output"] else sys.stdout
        exported = 0

        def counted(rows: Iterator[TestCase]) -> Iterator[TestCase]:
            nonlocal exported
            for row in rows:
                exported += 1
                yield row

        try:
            # iterator() with a chunk size keeps memory bounded and still prefetches the tags per chunk.
            rows = tests.order_by("created_at", "id").iterator(chunk_size=1000)
            for text in export_chunks(counted(rows), options["format"]):
                output.write(text)
        finally:
            if output is not sys.stdout:
                output.close()
        self.stderr.write(f"Exported {exported} test(s).")
