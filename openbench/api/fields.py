"""Serializer fields shared by the API apps."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def _has_null_character(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_null_character(key) or _has_null_character(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_null_character(item) for item in value)
    return False


class JSONField(serializers.JSONField):
    """Any JSON value, except strings holding NUL, which PostgreSQL's jsonb cannot store (a 500 otherwise).

    DRF's CharField refuses NUL already; this does the same for keys and strings anywhere in a document.
    """

    default_error_messages = {"null_characters": "Null characters are not allowed."}

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if _has_null_character(value):
            self.fail("null_characters")
        return value
