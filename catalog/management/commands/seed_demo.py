"""Load the demo catalog (mock models, tests, demo accounts). Running it twice changes nothing."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from catalog.demo.seed import DEMO_ACCOUNTS, demo_catalog_seed
from catalog.models import TestCase

DEFAULT_DEMO_PASSWORD = "openbench-demo-2026"  # noqa: S105 - local demo only; never used when DEBUG is off


class Command(BaseCommand):
    help = "Load a demo catalog: offline mock models, 30+ tests in several categories, demo accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--with-results",
            action="store_true",
            help="Also run every approved test once against the active models when no result exists yet, "
            "so the leaderboard has numbers (in-process executor only).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # In production the accounts get no usable password unless DEMO_PASSWORD is given.
        password = os.environ.get("DEMO_PASSWORD") or (DEFAULT_DEMO_PASSWORD if settings.DEBUG else None)
        report = demo_catalog_seed(password=password)
        if report.changed:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo catalog: {len(report.models)} models, {len(report.tests)} tests, "
                    f"{len(report.users)} accounts created."
                )
            )
        else:
            self.stdout.write("Demo catalog already loaded; nothing changed.")
        if options["with_results"]:
            self._run_demo_batch()
        if settings.DEBUG and password:
            self.stdout.write("Demo accounts (DEBUG only):")
            for email, _, role in DEMO_ACCOUNTS:
                self.stdout.write(f"  {role:<10} {email} / {password}")

    def _run_demo_batch(self) -> None:
        # Through the reverse relation, so the catalog needs no import of evaluations (SPEC §1 layering).
        if TestCase.objects.filter(results__isnull=False).exists():
            self.stdout.write("Results exist already; the demo batch is not run again.")
        elif settings.USE_RQ:
            self.stdout.write("With REDIS_URL set, run `manage.py run_batch --all-models --wait` while a worker runs.")
        else:
            # --yes: the demo models are offline mocks; their prices are for show and nobody is asked.
            call_command("run_batch", "--all-models", "--wait", "--yes", stdout=self.stdout, stderr=self.stderr)
