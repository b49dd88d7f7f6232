"""Keeping analytics fresh as results land."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.core.cache import cache

if TYPE_CHECKING:
    from evaluations.models import TestResult

ANALYTICS_VERSION_KEY = "analytics:version"


def analytics_cache_version() -> int:
    """The current generation of cached analytics; bumped whenever results land."""
    version = cache.get(ANALYTICS_VERSION_KEY)
    if version is None:
        cache.add(ANALYTICS_VERSION_KEY, 1, timeout=None)
        version = cache.get(ANALYTICS_VERSION_KEY, 1)
    return int(version)


def results_recorded(*, results: Sequence[TestResult]) -> None:
    """Called by the engine after results are saved: cached analytics computed before them go stale."""
    if not results:
        return
    try:
        cache.incr(ANALYTICS_VERSION_KEY)
    except ValueError:  # the key expired or was never set
        cache.add(ANALYTICS_VERSION_KEY, 2, timeout=None)
