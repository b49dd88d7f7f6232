"""`manage.py run_schedules`: run the schedules of SPEC §12.

With REDIS_URL, starts rq's cron scheduler, which enqueues the tick job every minute on the `default`
queue (a worker must listen to it: `manage.py rqworker evaluations default`). Without it (the embedded
default), runs the ticks in this process every SCHEDULES_POLL_SECONDS, the executions in its in-process
executor. `--once` runs one tick here and now, waits for what it started, and checks it for drift.
Several schedulers at once are safe: each tick of a schedule runs once.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from monitoring.jobs import cron_scheduler, schedules_tick_job


class Command(BaseCommand):
    help = "Run due schedules: rq's cron scheduler with Redis, a loop in this process without it; --once for one pass."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass now, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self._once()
            return
        if settings.USE_RQ:
            import django_rq

            self.stdout.write("Starting rq's cron scheduler: the schedule tick every minute on the default queue.")
            cron_scheduler(django_rq.get_connection("default")).start()
            return
        self.stdout.write(f"Checking schedules every {settings.SCHEDULES_POLL_SECONDS:g} s (Ctrl-C to stop).")
        try:
            while True:
                self._report(schedules_tick_job())
                time.sleep(settings.SCHEDULES_POLL_SECONDS)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _once(self) -> None:
        outcome = schedules_tick_job()
        if not settings.USE_RQ:
            # The executions run in this process: let them finish, then check them before exiting.
            from evaluations import executor
            from monitoring import notify
            from monitoring.drift import drift_check_finished_runs

            executor.wait_idle()
            outcome["alerts"] += len(drift_check_finished_runs())
            notify.wait_idle()
        self._report(outcome)

    def _report(self, outcome: dict[str, int]) -> None:
        self.stdout.write(f"Started {outcome['runs']} scheduled run(s); {outcome['alerts']} new alert(s).")
