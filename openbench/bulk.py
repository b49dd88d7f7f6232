"""Inserting many new rows at once: COPY on PostgreSQL, bulk_create elsewhere.

Django's bulk_create on PostgreSQL sends the rows as bound arrays, and psycopg binds parameters on the
client: every value is quoted into the SQL text in Python, JSON documents character by character. COPY
streams the rows instead, at about a quarter of the CPU. Constraints hold the same way: a violation
raises IntegrityError (through Django's error wrapper) and the surrounding transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import DateField, JSONField, Model
from django.db.models.fields import AutoFieldMixin

ModelT = TypeVar("ModelT", bound=Model)


def insert_rows(model: type[ModelT], objects: Sequence[ModelT]) -> None:
    """Insert `objects` (new, unsaved instances) as rows of `model`'s table.

    auto_now / auto_now_add fields are filled in as save() would. Nothing is read back: an auto-increment
    primary key is left to the database and stays None on the instance (as bulk_create leaves it on
    backends without RETURNING); any other primary key must already be set, as a UUID default does.
    """
    if not objects:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    from psycopg.types.json import Jsonb

    fields = [field for field in model._meta.concrete_fields if not isinstance(field, AutoFieldMixin)]
    attnames = [field.attname for field in fields]
    json_positions = [i for i, field in enumerate(fields) if isinstance(field, JSONField)]
    stamped = [field for field in fields if isinstance(field, DateField) and (field.auto_now or field.auto_now_add)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    copy_sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
        for obj in objects:
            for field in stamped:
                field.pre_save(obj, add=True)
            values = obj.__dict__
            row: list[Any] = [values[name] for name in attnames]
            for position in json_positions:
                if row[position] is not None:  # None is SQL NULL, as bulk_create stores it
                    row[position] = Jsonb(row[position])
            copy.write_row(row)
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
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create([model(**dict(zip(attnames, row, strict=True))) for row in rows])
        return
    columns = ", ".join(connection.ops.quote_name(by_attname[name].column) for name in attnames)
    copy_sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)
