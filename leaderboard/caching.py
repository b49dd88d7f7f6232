"""Cached analytics answers, keyed by the generations of exactly the data they read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache

from leaderboard.services import analytics_cache_version, analytics_model_versions


def analytics_cached(
    kind: str, params: dict[str, Any], compute: Callable[[], Any], *, model_ids: Sequence[str] | None = None
) -> Any:
    """Return the cached answer or compute and store it.

    Answers about given models (compare, performance, trends of chosen models) depend only on those
    models' generations, so results landing for other models leave them cached; the rest depend on
    the global generation.
    """
    versions = analytics_model_versions(model_ids) if model_ids else [analytics_cache_version()]
    digest = hashlib.sha256(json.dumps([params, versions], sort_keys=True, default=str).encode()).hexdigest()
    key = f"analytics:answer:{kind}:{digest[:32]}"
    answer = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, timeout=settings.ANALYTICS_CACHE_SECONDS)
    return answer
