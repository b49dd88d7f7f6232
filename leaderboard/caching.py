"""Cached analytics answers, keyed by the generations of exactly the data they read.

A generation is a counter in the cache: one global, and one per model. Whatever changes analytics
bumps them (`analytics_cache_invalidate`), so every answer keyed by an older generation is simply
never read again and expires on its own; nothing has to find and delete it.
"""

from __future__ import annotations

import decimal
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache

ANALYTICS_VERSION_KEY = "analytics:version"
MODEL_VERSION_KEY = "analytics:version:model:{}"


# --- generations ------------------------------------------------------------------------------


def generation_current(key: str) -> int:
    """The current value of a generation counter, starting it at 1 if it expired or was never set."""
    version = cache.get(key)
    if version is None:
        cache.add(key, 1, timeout=None)
        version = cache.get(key, 1)
    return int(version)


def analytics_cache_version() -> int:
    """The current generation of cached analytics; bumped whenever results land or tests change."""
    return generation_current(ANALYTICS_VERSION_KEY)


def analytics_model_versions(model_ids: Sequence[str]) -> list[int]:
    """Per-model generations: a cached compare/performance answer survives results of other models."""
    keys = [MODEL_VERSION_KEY.format(model_id) for model_id in model_ids]
    found = cache.get_many(keys)
    return [int(found.get(key, 0)) for key in keys]


def generation_bump(key: str) -> None:
    """Advance one generation counter, creating it if it expired or was never set."""
    try:
        cache.incr(key)
    except ValueError:  # the key expired or was never set
        cache.add(key, 2, timeout=None)


def analytics_cache_invalidate(*, model_ids: Iterable[Any] = ()) -> None:
    """Make cached analytics stale: every global answer, and those about the given models."""
    generation_bump(ANALYTICS_VERSION_KEY)
    for model_id in {str(m) for m in model_ids}:
        generation_bump(MODEL_VERSION_KEY.format(model_id))


# --- answers ----------------------------------------------------------------------------------


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
