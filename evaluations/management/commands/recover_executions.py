"""Find executions left unfinished by a dead worker and finish only their missing (execution, model) pairs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from evaluations.budgets import budget_release_finished
from evaluations.runner.run import run_executions
from evaluations.services import executions_dispatch, executions_find_stale


class Command(BaseCommand):
    help = "Re-run stale executions (no heartbeat for EVAL_STALE_AFTER_SECONDS); only missing pairs are run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=None,
            help=f"Seconds without a heartbeat before an execution counts as abandoned "
            f"(default EVAL_STALE_AFTER_SECONDS={settings.EVAL_STALE_AFTER_SECONDS}).",
        )
        parser.add_argument(
            "--inline", action="store_true", help="Run them in this process instead of queueing them for workers."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be recovered.")

    def handle(self, *args: Any, **options: Any) -> None:
        stale_after = options["stale_after"]
        seconds = settings.EVAL_STALE_AFTER_SECONDS if stale_after is None else stale_after
        if not options["dry_run"]:
            # Runs that crashed after closing their execution but before settling it hold a reserve still.
            released = budget_release_finished()
            if released:
                self.stdout.write(f"Released {released} budget reservation(s) of finished executions.")
        stale = executions_find_stale(stale_after=seconds)
        if not stale:
            self.stdout.write("No stale executions.")
            return
        for execution in stale:
            self.stdout.write(
                f"{execution.pk} {execution.status} {execution.progress}/{execution.total_evaluations} "
                f"(heartbeat {execution.heartbeat_at or 'never'})"
            )
        if options["dry_run"]:
            return
        ids = [str(execution.pk) for execution in stale]
        if options["inline"] or not settings.USE_RQ:
            report = run_executions(ids, takeover_stale_after=seconds)
            self.stdout.write(f"Recovered {len(report.claimed)} executions here: {report.results} new results.")
        else:
            jobs = executions_dispatch(execution_ids=ids, takeover_stale_after=seconds)
            self.stdout.write(f"Queued {len(ids)} executions in {jobs} job(s).")
