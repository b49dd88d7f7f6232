"""rq entry points of monitoring: they take ids (or nothing) and call a service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Every minute: the cron tick that fires due schedules. A schedule's own cron is read from the database,
# so schedules created or edited later need no change here.
TICK_CRON = "* * * * *"


def schedules_tick_job() -> dict[str, int]:
    """One scheduler pass: start the schedules whose tick has come (once per tick, whoever else runs this),
    then check the finished scheduled runs for drift."""
    from monitoring.drift import drift_check_finished_runs
    from monitoring.services import schedules_fire_due

    runs = schedules_fire_due()
    alerts = drift_check_finished_runs()
    return {"runs": len(runs), "alerts": len(alerts)}


def alerts_deliver_job(alert_ids: Sequence[str]) -> None:
    """Webhook (retried with backoff) and e-mail of the alerts."""
    from monitoring.notify import alerts_deliver

    alerts_deliver(alert_ids=alert_ids)


def cron_scheduler(connection: Any, *, queue_name: str = "default") -> Any:
    """rq's cron scheduler (`rq.cron`) enqueueing the tick job every minute on `queue_name`."""
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=connection)
    scheduler.register(schedules_tick_job, queue_name=queue_name, cron=TICK_CRON)
    return scheduler
