"""Load the demo catalog (mock models, tests, demo accounts). Running it twice changes nothing."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.demo.seed import DEMO_ACCOUNTS, demo_catalog_seed

DEFAULT_DEMO_PASSWORD = "openbench-demo-2026"  # noqa: S105 - local demo only; never used when DEBUG is off


class Command(BaseCommand):
    help = "Load a demo catalog: offline mock models, 30+ tests in several categories, demo accounts."

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
        if settings.DEBUG and password:
            self.stdout.write("Demo accounts (DEBUG only):")
            for email, _, role in DEMO_ACCOUNTS:
                self.stdout.write(f"  {role:<10} {email} / {password}")
