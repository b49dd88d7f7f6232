"""Hugging Face style datasets: JSON lines or Parquet (read by record batches), with a column map
`prompt=COL,expected=COL[,category=COL,title=COL,system_prompt=COL,difficulty=COL]`.

An expected value that is text or a number is an `exact_match` answer; a list of answers is a `contains`
scorer accepting any of them; an object is a `structured_match` expected output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from catalog.interchange.base import (
    DEFAULT_CATEGORY,
    LineError,
    ReadOptions,
    Record,
    expanded_limit,
    file_error,
    json_lines,
    title_from,
)

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow (~40 MB and ~0.3 s to import) is imported by the Parquet reader when a Parquet file comes, not
# here: this module is imported with the API's URLs, and so by every process that runs the system checks.

REQUIRED_KEYS = ("prompt", "expected")
MAP_KEYS = (*REQUIRED_KEYS, "category", "title", "system_prompt", "difficulty")
_BATCH_ROWS = 1000
_PARQUET_MAGIC = b"PAR1"


def parse_map(text: str) -> dict[str, str]:
    """`prompt=question,expected=answer` → {"prompt": "question", ...}; a malformed map refuses the request."""
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in (text or "").split(","))):
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column:
            raise file_error(f"{part!r} is not KEY=COLUMN.", field="map")
        if key not in MAP_KEYS:
            raise file_error(f"Unknown key {key!r}; the map knows {', '.join(MAP_KEYS)}.", field="map")
        mapping[key] = column
    return mapping


def _check_map(mapping: dict[str, str]) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in mapping]
    if missing:
        raise file_error(f"The map needs {' and '.join(missing)} (e.g. prompt=question,expected=answer).", field="map")


def read(stream: BinaryIO, options: ReadOptions) -> Iterator[Record]:
    mapping = options.column_map
    _check_map(mapping)
    head = stream.read(4)
    stream.seek(0)
    rows: Iterator[tuple[int, dict[str, Any] | LineError]]
    if head == _PARQUET_MAGIC:
        rows = _parquet_rows(stream, mapping)
    else:
        rows = _jsonl_rows(stream, mapping)
    for number, row in rows:
        if isinstance(row, LineError):
            yield Record(line=number, errors=[row])
            continue
        try:
            yield Record(line=number, fields=fields_from_row(row, mapping))
        except ValueError as exc:
            yield Record.refused(number, exc)


def _jsonl_rows(stream: BinaryIO, mapping: dict[str, str]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    first = True
    for number, row in json_lines(stream, format_name="JSON lines (or Parquet)"):
        if first and isinstance(row, dict):
            # The first record shows the columns: a map naming one it lacks is a mistake in the map.
            _check_columns(mapping, row.keys())
            first = False
        yield number, row


def _parquet_rows(stream: BinaryIO, mapping: dict[str, str]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError):
        raise file_error("The file starts like Parquet but is not a readable Parquet file.") from None
    _check_columns(mapping, parquet.schema_arrow.names)
    columns = sorted(set(mapping.values()))
    # Compressed pages and dictionary-encoded strings let a small file hold gigabytes of text: the pages'
    # size once decompressed (from the file's metadata) and each batch's strings (its dictionaries kept as
    # they are, so only their indices are read) are counted against the limit before they become Python text.
    limit = expanded_limit()
    schema, metadata = parquet.schema, parquet.metadata
    leaves = [index for index in range(len(schema)) if schema.column(index).path.split(".")[0] in columns]
    pages = sum(
        metadata.row_group(group).column(index).total_uncompressed_size
        for group in range(metadata.num_row_groups)
        for index in leaves
    )
    if pages > limit:
        raise file_error(f"Decompressed, the mapped columns hold more than {limit} bytes; split the file.")
    dictionaries = [schema.column(i).path for i in leaves if schema.column(i).physical_type == "BYTE_ARRAY"]
    parquet = pq.ParquetFile(stream, read_dictionary=dictionaries)
    number = 0
    read = 0
    try:
        # Record batches keep memory bounded whatever the file's size; only the mapped columns are read.
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
            read += sum(_decoded_bytes(column) for column in batch.columns)
            if read > limit:
                raise file_error(f"Row {number + 1}: the mapped columns hold more than {limit} bytes; split the file.")
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        raise file_error(f"Row {number + 1}: the Parquet file cannot be read ({type(exc).__name__}).") from None


def _decoded_bytes(array: pa.Array) -> int:
    """About how many bytes `array` holds once its dictionaries are decoded (what to_pylist will build)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.DictionaryArray):
        if pa.types.is_string(array.type.value_type) or pa.types.is_binary(array.type.value_type):
            return int(pc.sum(pc.binary_length(array.dictionary).take(array.indices)).as_py() or 0)
        return int(array.nbytes)
    if isinstance(array, pa.ListArray | pa.LargeListArray | pa.FixedSizeListArray):
        return _decoded_bytes(array.flatten())
    if isinstance(array, pa.StructArray):
        return sum(_decoded_bytes(array.field(index)) for index in range(array.type.num_fields))
    return int(array.nbytes)


def _check_columns(mapping: dict[str, str], columns: Any) -> None:
    available = set(columns)
    missing = [f"{key}={column}" for key, column in mapping.items() if column not in available]
    if missing:
        raise file_error(f"The map names columns the file does not have: {', '.join(missing)}.", field="map")


def fields_from_row(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Our fields from one mapped row; ValueError("field: why") when it cannot be one test."""
    prompt = row.get(mapping["prompt"])
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{mapping['prompt']}: the prompt column must hold text")
    expected = row.get(mapping["expected"])
    fields: dict[str, Any] = {"prompt": prompt, "category": DEFAULT_CATEGORY}
    if isinstance(expected, list) and expected and all(isinstance(item, str) for item in expected):
        fields.update(
            expected_output=expected[0],
            evaluation_type="custom",
            evaluation_config={"scorer": "contains", "values": expected, "mode": "any"},
        )
    elif isinstance(expected, dict):
        fields.update(expected_output=expected, evaluation_type="structured_match")
    elif isinstance(expected, str | int | float) and not isinstance(expected, bool) and expected != "":
        fields.update(expected_output=expected, evaluation_type="exact_match")
    else:
        raise ValueError(f"{mapping['expected']}: expected text, a number, a list of texts or an object")
    for key in ("category", "title", "system_prompt", "difficulty"):
        if key in mapping and row.get(mapping[key]) not in (None, ""):
            fields[key] = row[mapping[key]]
    fields.setdefault("title", title_from(prompt, "Imported test"))
    return fields
