"""What every format reader shares: the record it yields, the error that refuses a whole file, and the
streaming helpers (a text view of an uploaded or opened binary file, JSON lines, CSV rows)."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings

from openbench.exceptions import ApplicationError

# Imported tests need a category (a slug); formats that have none get this one unless the file names one.
DEFAULT_CATEGORY = "imported"
_TITLE_LENGTH = 80


@dataclass(frozen=True)
class LineError:
    """Why one record was not imported: its 1-based line (for YAML, the line its test starts on), the field
    when one is to blame, and for YAML the test's 1-based position in the list."""

    line: int
    message: str
    field: str | None = None
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, "field": self.field, "message": self.message}
        if self.index is not None:
            data["index"] = self.index
        return data

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (test {self.index})" if self.index is not None else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class Record:
    """One record of a file as our test fields (`tags` included), or the errors that refuse it."""

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    index: int | None = None

    @classmethod
    def failed(cls, line: int, message: str, *, field: str | None = None, index: int | None = None) -> Record:
        return cls(line=line, errors=[LineError(line=line, message=message, field=field, index=index)], index=index)

    @classmethod
    def refused(cls, line: int, exc: ValueError, *, index: int | None = None) -> Record:
        """From a mapper's ValueError("field: why") (or a bare "why")."""
        field, _, message = str(exc).partition(": ")
        return cls.failed(line, message or field, field=field if message else None, index=index)


# What a foreign record's metadata may set of ours; `metadata.openbench` (an export's full test) wins over all.
METADATA_FIELDS = ("category", "difficulty", "tags", "language")


def apply_metadata(fields: dict[str, Any], metadata: dict[str, Any]) -> None:
    for name in METADATA_FIELDS:
        if name in metadata:
            fields[name] = metadata[name]
    own = metadata.get("openbench")
    if own is not None:
        if not isinstance(own, dict):
            raise ValueError("metadata.openbench: expected an object")
        fields.update(own)


# Some formats hold more text than their bytes: promptfoo's vars fill templates, Parquet pages are compressed
# and its strings dictionary-encoded (a file of a few kilobytes can hold gigabytes). What one file may turn
# into is capped at this many times the largest file we take, checked before the text is built.
MAX_EXPANSION = 10


def expanded_limit() -> int:
    """The most text (in characters or bytes) one file's records may hold once read."""
    return settings.IMPORT_MAX_BYTES * MAX_EXPANSION


def file_error(message: str, *, field: str = "file") -> ApplicationError:
    """A whole file refused before anything is written (400 naming the field: `file`, `format`, `map`...)."""
    return ApplicationError(message, code="invalid_file", details={field: [message]})


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file: the column map (hf) and the prompt template (promptfoo)."""

    column_map: dict[str, str] = field(default_factory=dict)
    prompt_template: str | None = None


def text_lines(stream: BinaryIO) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of a UTF-8 file read lazily; a file that is not UTF-8 is refused whole."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    number = 0
    try:
        for raw in stream:
            number += 1
            yield number, decoder.decode(raw)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise file_error(f"Line {max(number, 1)} is not UTF-8 text; is this a text file?") from None


def json_lines(stream: BinaryIO, *, format_name: str) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    """Every non-empty line as a JSON object or the reason it is not one. When the first line is not JSON,
    the file is not JSON lines at all: refused whole, naming `file`."""
    seen_object = False
    for number, text in text_lines(stream):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            if not seen_object:
                raise file_error(
                    f"Line {number} is not JSON ({why}); a {format_name} file has one JSON object per line."
                ) from None
            yield number, LineError(line=number, message=f"not valid JSON: {why}")
            continue
        if not isinstance(value, dict):
            if not seen_object:
                raise file_error(f"Line {number} is not a JSON object; a {format_name} file has one object per line.")
            yield number, LineError(line=number, message="each line must be a JSON object")
            continue
        seen_object = True
        yield number, value


def csv_rows(
    stream: BinaryIO, *, required: tuple[str, ...] = (), known: tuple[str, ...] | None = None
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line where the row starts, cells by header) for every row. A missing header, a required column
    missing or (when `known` is given) an unknown column refuses the file whole, naming the column."""
    lines = (text for _, text in text_lines(stream))
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise file_error(f"Line 1 is not a CSV header ({exc}).") from None
    if not header:
        raise file_error("The file is empty: a CSV file starts with a header row.")
    missing = [name for name in required if name not in header]
    if missing:
        raise file_error(f"The CSV header has no {', '.join(repr(name) for name in missing)} column.")
    if known is not None:
        unknown = [name for name in header if name not in known]
        if unknown:
            raise file_error(f"The CSV header names unknown columns: {', '.join(repr(name) for name in unknown)}.")
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise file_error(f"Line {start}: the file is not valid CSV ({exc}).") from None
        yield start, row
        start = reader.line_num + 1


def sniff_first_byte(stream: BinaryIO) -> bytes:
    """The first non-blank byte of a seekable file (b"" when empty), leaving the file where it was."""
    position = stream.tell()
    head = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    stream.seek(position)
    return head[:1]


def title_from(text: str, fallback: str) -> str:
    """A title from a prompt's first line, shortened; `fallback` when there is no text."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        return fallback
    return first if len(first) <= _TITLE_LENGTH else first[: _TITLE_LENGTH - 1].rstrip() + "…"
