"""Let a judge model vote in the arena: pairs of answers judged in both orders, votes kept apart from people's."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.pairwise import run_pairwise
from catalog.models import LLMModel, TestCase


class Command(BaseCommand):
    help = (
        "A judge model votes on pairs of models' latest successful answers to approved public tests, each pair "
        "judged in both orders (a disagreement is a tie); its votes feed GET /arena/ratings?source=judge."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--judge", required=True, help="The judge's model name in the registry.")
        parser.add_argument("--tests", nargs="+", default=None, metavar="TEST_ID", help="Only these tests (ids).")
        parser.add_argument("--limit", type=int, default=50, help="At most this many pairs (default 50).")
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds per judge call (default 60).")
        parser.add_argument("--concurrency", type=int, default=4, help="Pairs judged at once (default 4).")

    def handle(self, *args: Any, **options: Any) -> None:
        judge = LLMModel.objects.filter(name=options["judge"]).first()
        if judge is None:
            raise CommandError(f"No model named {options['judge']!r} in the registry.")
        if not 1 <= options["limit"] <= 10_000 or not 1 <= options["concurrency"] <= 64 or options["timeout"] <= 0:
            raise CommandError("--limit must be 1-10000, --concurrency 1-64, --timeout above 0.")
        test_ids = None
        if options["tests"]:
            try:
                test_ids = [uuid.UUID(value) for value in options["tests"]]
            except ValueError:
                raise CommandError("--tests takes test ids (UUIDs).") from None
            found = set(TestCase.objects.publicly_listed().filter(pk__in=test_ids).values_list("pk", flat=True))
            missing = [str(t) for t in test_ids if t not in found]
            if missing:
                raise CommandError(f"Not approved public tests: {', '.join(missing)}.")
        report = run_pairwise(
            judge=judge,
            test_ids=test_ids,
            limit=options["limit"],
            timeout=options["timeout"],
            concurrency=options["concurrency"],
        )
        failures = report.failures or []
        self.stdout.write(
            f"{judge.name} judged {report.judged} pair(s) in both orders; {report.ties_from_disagreement} tie(s) "
            f"because the two orders disagreed; {len(failures)} failed."
        )
        for reason in sorted(set(failures)):
            self.stdout.write(f"  failed: {reason}")
        if not report.judged and not failures:
            self.stdout.write("Nothing to judge: no unjudged pair of successful answers (the judge's own excluded).")
