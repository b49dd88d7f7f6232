"""Writing many rows at once: COPY on PostgreSQL; bulk_create and pipelined UPDATEs elsewhere.

Django's bulk_create on PostgreSQL sends the rows as bound arrays, and psycopg binds parameters on the
client: every value is quoted into the SQL text in Python, JSON documents character by character. COPY
streams the rows instead, at about a quarter of the CPU. Constraints hold the same way: a violation
raises IntegrityError (through Django's error wrapper) and the surrounding transaction rolls back.

Text that PostgreSQL cannot store is replaced here, on every backend alike, before any row is sent:
NUL (refused in text, and as \\u0000 in jsonb), lone UTF-16 surrogates (no UTF-8 encoding) and, in
JSON, non-finite numbers (refused by jsonb). One model answer with a NUL would otherwise fail the
whole COPY, and with it every other result of the batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import CharField, DateField, Field, JSONField, Model, TextField
from django.db.models.fields import AutoFieldMixin

ModelT = TypeVar("ModelT", bound=Model)

# Below this many rows an UPDATE per row (pipelined) is cheaper than a temporary table to COPY into.
UPDATE_COPY_THRESHOLD = 50

REPLACEMENT = "\ufffd"
# NUL, and surrogate code points: a Python str holds them only unpaired (a pair decodes to one code point).
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` with every character PostgreSQL refuses in text (NUL, lone surrogates) replaced by U+FFFD."""
    if value.isascii():  # the common case, checked at C speed; ASCII can only hold a NUL
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _REFUSED.sub(REPLACEMENT, value)


def clean_json(value: Any) -> Any:
    """A JSON document jsonb accepts: strings (keys too) cleaned as clean_text does, NaN and ±Infinity as
    the strings "NaN", "Infinity" and "-Infinity" (jsonb has no such numbers; json.loads reads them)."""
    kind = type(value)
    # Exact types first, the common ones: this runs on every JSON value of every result the engine writes.
    if kind is int or kind is bool or value is None:
        return value
    if kind is str:
        return clean_text(value)
    if kind is dict:
        return {(clean_text(k) if type(k) is str else k): clean_json(v) for k, v in value.items()}
    if kind is list:
        return [clean_json(item) for item in value]
    # Then floats and subclasses (a tuple, an OrderedDict, a str enum).
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {(clean_text(k) if isinstance(k, str) else k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


def _clean_any_text(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _cleaners(fields: Sequence[Field[Any, Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, cleaner) for each text or JSON field among `fields`."""
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for position, field in enumerate(fields):
        if isinstance(field, JSONField):
            found.append((position, clean_json))
        elif isinstance(field, CharField | TextField):
            found.append((position, _clean_any_text))
    return found


def _clean_objects(objects: Sequence[Model], fields: Sequence[Field[Any, Any]]) -> None:
    """Clean the text and JSON attributes of `objects` in place, so each instance holds what its row holds."""
    cleaners = [(fields[position].attname, cleaner) for position, cleaner in _cleaners(fields)]
    for obj in objects:
        values = obj.__dict__
        for attname, cleaner in cleaners:
            value = values.get(attname)
            if value is not None:
                values[attname] = cleaner(value)


def _clean_rows(rows: Sequence[Sequence[Any]], fields: Sequence[Field[Any, Any]]) -> list[list[Any]]:
    """Plain value rows with their text and JSON values cleaned."""
    cleaners = _cleaners(fields)
    cleaned = []
    for row in rows:
        values = list(row)
        for position, cleaner in cleaners:
            if values[position] is not None:
                values[position] = cleaner(values[position])
        cleaned.append(values)
    return cleaned


def _json_wrapper(fields: Sequence[Field[Any, Any]]) -> Any:
    """A function that wraps a row's JSON values for COPY (None stays SQL NULL, as bulk_create stores it)."""
    from psycopg.types.json import Jsonb

    positions = [i for i, field in enumerate(fields) if isinstance(field, JSONField)]

    def wrap(row: list[Any]) -> list[Any]:
        for position in positions:
            if row[position] is not None:
                row[position] = Jsonb(row[position])
        return row

    return wrap


@contextmanager
def _copy_into(table: str, columns: Sequence[str]) -> Iterator[Any]:
    """A psycopg COPY … FROM STDIN into `table`'s `columns` (both unquoted); write rows with write_row."""
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(column) for column in columns)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        yield copy


def insert_rows(model: type[ModelT], objects: Sequence[ModelT]) -> None:
    """Insert `objects` (new, unsaved instances) as rows of `model`'s table.

    auto_now / auto_now_add fields are filled in as save() would, and text and JSON values cleaned (see
    clean_text, clean_json) on the instances themselves. Nothing is read back: an auto-increment
    primary key is left to the database and stays None on the instance (as bulk_create leaves it on
    backends without RETURNING); any other primary key must already be set, as a UUID default does.
    """
    if not objects:
        return
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, AutoFieldMixin)]
    _clean_objects(objects, fields)
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    attnames = [field.attname for field in fields]
    stamped = [field for field in fields if isinstance(field, DateField) and (field.auto_now or field.auto_now_add)]
    wrap = _json_wrapper(fields)
    with _copy_into(model._meta.db_table, [field.column for field in fields]) as copy:
        for obj in objects:
            for field in stamped:
                field.pre_save(obj, add=True)
            values = obj.__dict__
            copy.write_row(wrap([values[name] for name in attnames]))
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias


def insert_values(model: type[Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert plain value rows into `model`'s table, columns named by attribute (`execution_id`), without
    building a model instance per row on PostgreSQL. Columns left out take their database default (an
    auto-increment id); use it for link tables, where the rows have no behaviour worth an instance."""
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    unknown = [name for name in attnames if name not in by_attname]
    if unknown:
        raise ValueError(f"{model._meta.label} has no column {', '.join(unknown)}.")
    if not rows:
        return
    rows = _clean_rows(rows, [by_attname[name] for name in attnames])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create([model(**dict(zip(attnames, row, strict=True))) for row in rows])
        return
    with _copy_into(model._meta.db_table, [by_attname[name].column for name in attnames]) as copy:
        for row in rows:
            copy.write_row(row)


def update_rows(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of existing rows from `objects`, matched by primary key.

    Text and JSON values are cleaned first, on the instances, as insert_rows does. Many rows on
    PostgreSQL: COPY them into a temporary table and run one UPDATE … FROM it. Otherwise one
    parameterised UPDATE per row, which psycopg pipelines: either is far cheaper than the CASE WHEN per
    column that bulk_update generates for hundreds of rows.
    """
    if not objects:
        return
    pk = model._meta.pk
    assert pk is not None
    concrete: list[Field[Any, Any]] = [model._meta.get_field(name) for name in fields]  # type: ignore[misc]
    _clean_objects(objects, concrete)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    if connection.vendor != "postgresql" or len(objects) < UPDATE_COPY_THRESHOLD:
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in concrete)
        sql = f"UPDATE {table} SET {assignments} WHERE {quote(pk.column)} = %s"  # noqa: S608
        db = connections[DEFAULT_DB_ALIAS]  # resolved once: the `connection` proxy costs a lookup per access
        params = [
            [field.get_db_prep_save(getattr(obj, field.attname), db) for field in concrete]
            + [pk.get_db_prep_save(obj.pk, db)]
            for obj in objects
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
        return
    staged_name = f"staged_{model._meta.db_table}"
    staged = quote(staged_name)
    columns = [pk.column, *(field.column for field in concrete)]
    quoted = [quote(column) for column in columns]
    wrap = _json_wrapper([pk, *concrete])
    assignments = ", ".join(f"{column} = staged.{column}" for column in quoted[1:])
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Same column types as the table, no constraints; dropped at the end (and at commit in any case).
            # Only identifiers from the model's metadata are interpolated, quoted; values travel by COPY.
            select = f"SELECT {', '.join(quoted)} FROM {table} WITH NO DATA"  # noqa: S608
            cursor.execute(f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS {select}")
        with _copy_into(staged_name, columns) as copy:
            for obj in objects:
                copy.write_row(wrap([obj.pk, *(getattr(obj, field.attname) for field in concrete)]))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {staged} AS staged "  # noqa: S608
                f"WHERE {table}.{quoted[0]} = staged.{quoted[0]}"
            )
            cursor.execute(f"DROP TABLE {staged}")
