"""Our own test fields, as `export_tests --format jsonl` writes them (one object per line) or as CSV
columns of the same names (JSON cells for the JSON fields, tags separated by commas or semicolons)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from catalog.interchange.base import LineError, ReadOptions, Record, csv_rows, json_lines
from catalog.services import EDITABLE_FIELDS

FIELDS = (*EDITABLE_FIELDS, "tags")
# CSV cells hold text; these columns carry JSON (an expected answer may be a plain string, kept as is).
_JSON_COLUMNS = ("output_schema", "evaluation_config")
_BOOL_COLUMNS = ("is_public",)
_INT_COLUMNS = ("timeout_seconds",)
_KEEP_EMPTY = ("description", "system_prompt")


def read_jsonl(stream: BinaryIO, options: ReadOptions) -> Iterator[Record]:
    for number, value in json_lines(stream, format_name="jsonl"):
        if isinstance(value, LineError):
            yield Record(line=number, errors=[value])
        else:
            yield Record(line=number, fields=value)


def read_csv(stream: BinaryIO, options: ReadOptions) -> Iterator[Record]:
    for number, row in csv_rows(stream, required=("prompt",), known=FIELDS):
        try:
            yield Record(line=number, fields=fields_from_csv(row))
        except ValueError as exc:
            yield Record.refused(number, exc)


def fields_from_csv(row: dict[str, str | None]) -> dict[str, Any]:
    """Our fields from one CSV row; ValueError("field: why") for a cell that does not parse."""
    fields: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            raise ValueError("the row has more cells than the header")
        value = (raw or "").strip()
        if value == "" and key not in _KEEP_EMPTY:
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
