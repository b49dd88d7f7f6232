"""Recompute the analytics read models from test_results (after a bulk import, or to repair drift)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from leaderboard.services import analytics_rebuild


class Command(BaseCommand):
    help = "Rebuild the latest-result table and the rollups behind the leaderboard and analytics."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        counts = analytics_rebuild()
        self.stdout.write(
            f"Rebuilt {counts['latest_results']} latest results and {counts['rollups']} rollups "
            f"in {time.perf_counter() - started:.1f}s."
        )
