"""Export test results as CSV or JSONL (streamed, so any number of rows fits in memory)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from evaluations.models import TestResult
from openbench.csvsafe import SafeDictWriter

FIELDS = (
    "id",
    "execution",
    "test_case",
    "test_title",
    "category",
    "revision",
    "model",
    "model_name",
    "provider",
    "sample",
    "status",
    "is_correct",
    "score",
    "raw_output",
    "parsed_output",
    "evaluation_details",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "judge_tokens",
    "judge_cost",
    "cached",
    "attempts",
    "error_type",
    "error_message",
    "executed_at",
)


def _row(result: TestResult) -> dict[str, Any]:
    return {
        "id": str(result.pk),
        "execution": str(result.execution_id),
        "test_case": str(result.test_case_id),
        "test_title": result.test_case.title,
        "category": result.test_case.category,
        "revision": result.revision,
        "model": str(result.model_id),
        "model_name": result.model.name,
        "provider": result.model.provider,
        "sample": result.sample,
        "status": result.status,
        "is_correct": result.is_correct,
        "score": result.score,
        "raw_output": result.raw_output,
        "parsed_output": result.parsed_output,
        "evaluation_details": result.evaluation_details,
        "latency_ms": result.latency_ms,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "total_tokens": result.total_tokens,
        "cost": str(result.cost),
        "judge_tokens": result.judge_tokens,
        "judge_cost": str(result.judge_cost),
        "cached": result.cached,
        "attempts": result.attempts,
        "error_type": result.error_type,
        "error_message": result.error_message,
        "executed_at": result.executed_at.isoformat(),
    }


class Command(BaseCommand):
    help = "Export results as CSV or JSONL, optionally filtered by execution, test, model or date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
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
        count = 0
        try:
            if options["format"] == "csv":
                # Answers and titles come from models and users: a cell like "=HYPERLINK(...)" is
                # written as text ("'=HYPERLINK(...)") so a spreadsheet never runs it.
                writer = SafeDictWriter(output, fieldnames=FIELDS)
                writer.writeheader()
                for result in results.iterator(chunk_size=2000):
                    row = _row(result)
                    for key in ("parsed_output", "evaluation_details"):
                        row[key] = json.dumps(row[key], ensure_ascii=False, cls=DjangoJSONEncoder)
                    writer.writerow(row)
                    count += 1
            else:
                for result in results.iterator(chunk_size=2000):
                    output.write(json.dumps(_row(result), ensure_ascii=False, cls=DjangoJSONEncoder) + "\n")
                    count += 1
        finally:
            if output is not sys.stdout:
                output.close()
        self.stderr.write(f"Exported {count} result(s).")
