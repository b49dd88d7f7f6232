"""Cached analytics answers, keyed by the generations of exactly the data they read."""

from __future__ import annotations

import decimal
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache

from leaderboard.services import analytics_cache_version, analytics_model_versions


def _key(kind: str, params: dict[str, Any], model_ids: Sequence[str] | None) -> str:
    """Answers about given models (compare, performance, trends of chosen models) depend only on those
    models' generations, so results landing for other models leave them cached; the rest depend on
    the global generation."""
    versions = analytics_model_versions(model_ids) if model_ids else [analytics_cache_version()]
    digest = hashlib.sha256(json.dumps([params, versions], sort_keys=True, default=str).encode()).hexdigest()
    return f"analytics:answer:{kind}:{digest[:32]}"


def analytics_cached(
    kind: str, params: dict[str, Any], compute: Callable[[], Any], *, model_ids: Sequence[str] | None = None
) -> Any:
    """Return the cached answer (plain data, for pages) or compute and store it."""
    key = _key(kind, params, model_ids)
    answer = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, timeout=settings.ANALYTICS_CACHE_SECONDS)
    return answer


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)  # as DRF's encoder does
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def render_json(data: Any) -> bytes:
    """JSON as DRF's renderer writes it (UTC datetimes end in "Z", decimals are numbers), but with orjson:
    ten thousand trend points or compared tests render in milliseconds instead of tens of them."""
    return orjson.dumps(data, default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY)


def analytics_cached_json(
    kind: str, params: dict[str, Any], compute: Callable[[], Any], *, model_ids: Sequence[str] | None = None
) -> bytes:
    """The cached answer as rendered JSON (for the API), or compute, render and store it.

    The rendered bytes are cached, not the data, so a warm request neither unpickles nor re-renders
    thousands of trend points or compared tests.
    """
    key = _key(f"json:{kind}", params, model_ids)
    body = cache.get(key)
    if body is None:
        body = render_json(compute())
        cache.set(key, body, timeout=settings.ANALYTICS_CACHE_SECONDS)
    return bytes(body)
