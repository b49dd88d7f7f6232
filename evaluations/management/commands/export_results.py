"""Export test results as CSV or JSONL (streamed, so any number of rows fits in memory)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluations.exports import CHUNK_SIZE, EXPORT_FORMATS, export_lines
from evaluations.models import TestResult


class Command(BaseCommand):
    help = "Export results as CSV or JSONL, optionally filtered by execution, test, model or date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl")
        parser.add_argument("--output", "-o", type=Path, help="File to write (default: standard output).")
        parser.add_argument("--execution", help="Only this execution's results.")
        parser.add_argument("--test", help="Only this test's results.")
        parser.add_argument("--model", help="Only this model's results (name).")
        parser.add_argument("--since", help="Only results executed at or after this ISO date/time.")

    def handle(self, *args: Any, **options: Any) -> None:
        results = TestResult.objects.select_related("test_case", "model").order_by("executed_at", "id")
        try:
            if options["execution"]:
                results = results.filter(execution_id=options["execution"])
            if options["test"]:
                results = results.filter(test_case_id=options["test"])
            if options["model"]:
                results = results.filter(model__name=options["model"])
            if options["since"]:
                results = results.filter(executed_at__gte=options["since"])
            results.exists()  # surface a malformed id or date now, as a clear error
        except Exception as exc:
            raise CommandError(f"Bad filter: {exc}") from exc
        output: IO[str]
        if options["output"]:
            output = options["output"].open("w", encoding="utf-8", newline="")
        else:
            output = sys.stdout
        count = -1 if options["format"] == "csv" else 0  # the CSV header is a line too
        try:
            for line in export_lines(results.iterator(chunk_size=CHUNK_SIZE), options["format"]):
                output.write(line)
                count += 1
        finally:
            if output is not sys.stdout:
                output.close()
        self.stderr.write(f"Exported {count} result(s).")
