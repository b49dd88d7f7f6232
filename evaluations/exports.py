"""Results as export rows (SPEC §14): one flat shape shared by `export_results` and GET
/api/v1/results/export, written as JSON lines or as formula-safe CSV, one row at a time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from evaluations.models import TestResult
from openbench.csvsafe import SafeDictWriter

EXPORT_FORMATS = ("csv", "jsonl")
CHUNK_SIZE = 2000

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
    """One result as a flat row (the test and model named, not only their ids)."""
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


class _Line:
    """A file-like that hands back what the csv writer wrote, so each row is yielded as it is made."""

    def write(self, text: str) -> str:
        return text


def csv_lines(results: Iterable[TestResult]) -> Iterator[str]:
    """The header, then one CSV line per result. Answers and titles come from models and users: a cell
    like "=HYPERLINK(...)" is written as text ("'=HYPERLINK(...)") so a spreadsheet never runs it."""
    writer = SafeDictWriter(_Line(), fieldnames=FIELDS)  # type: ignore[arg-type]
    yield writer.writeheader()
    for result in results:
        row = _row(result)
        for key in ("parsed_output", "evaluation_details"):
            row[key] = json.dumps(row[key], ensure_ascii=False, cls=DjangoJSONEncoder)
        yield writer.writerow(row)


def jsonl_lines(results: Iterable[TestResult]) -> Iterator[str]:
    for result in results:
        yield json.dumps(_row(result), ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"


def export_lines(results: Iterable[TestResult], fmt: str) -> Iterator[str]:
    return csv_lines(results) if fmt == "csv" else jsonl_lines(results)
