"""Cron expressions of schedules, read in UTC (croniter, which rq's cron scheduler uses too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]


def cron_errors(expression: str) -> list[str]:
    """Why `expression` is not a five-field cron expression croniter accepts (empty when it is)."""
    if len(expression.split()) != 5:
        return ["Use five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'."]
    if not croniter.is_valid(expression):
        return ["Not a valid cron expression."]
    try:
        next_tick(expression, datetime.now(UTC))
    except CroniterBadDateError:
        # Valid fields that no date satisfies ('0 0 31 2 *'): croniter raises when asked for a tick.
        return ["This expression never fires (no date matches it)."]
    return []


def next_tick(cron: str, after: datetime) -> datetime:
    """The first tick of `cron` strictly after `after`."""
    value: datetime = croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return value


def latest_tick(cron: str, now: datetime) -> datetime:
    """The last tick of `cron` at or before `now`: the tick a scheduler firing now runs."""
    # croniter's get_prev is strictly before its start; one second later makes `now` itself count.
    value: datetime = croniter(cron, now.astimezone(UTC) + timedelta(seconds=1)).get_prev(datetime)
    return value.replace(microsecond=0)
