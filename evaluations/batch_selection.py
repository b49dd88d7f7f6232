"""What `run_batch` runs: its tests, models and user from the command line, and whether its cost needs asking.

Shared by the command and by the worker that starts a batch the command handed off (evaluations.batch_handoff),
so both refuse the same command lines with the same words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from django.conf import settings

from accounts.models import User
from catalog.models import LLMModel, TestCase
from evaluations.estimates import RunEstimate, run_estimate
from evaluations.models import Execution
from evaluations.services import (
    check_repeats,
    executions_dispatch,
    executions_dispatch_beyond_first_job,
    executions_start_batch,
)
from openbench.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class BatchRefused(Exception):
    """A command line that cannot start a batch; the message says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def ids(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def checked_repeats(value: Any) -> int:
    try:
        return check_repeats(value)
    except ApplicationError as exc:
        raise BatchRefused(f"--repeats: {exc.details['repeats'][0]}") from exc


def select_tests(*, category: str | None, tag: str | None, tests: list[str] | None) -> list[TestCase]:
    found_tests = TestCase.objects.approved()
    if category:
        found_tests = found_tests.filter(category=category)
    if tag:
        found_tests = found_tests.filter(tags__name=tag)
    selected = ids(tests)
    if selected:
        try:
            found_tests = found_tests.filter(pk__in=selected)
            found = list(found_tests.distinct().order_by("created_at"))
        except Exception as exc:  # a malformed UUID
            raise BatchRefused(f"Bad test id: {exc}") from exc
        missing = set(selected) - {str(test.pk) for test in found}
        if missing:
            raise BatchRefused(f"Not approved or not found: {', '.join(sorted(missing))}.")
        return found
    found = list(found_tests.distinct().order_by("created_at"))
    if not found:
        raise BatchRefused("No approved tests match.")
    return found


def select_models(models: list[str] | None) -> list[LLMModel] | None:
    """The models named (ids or names), in order; None for every active model."""
    wanted = ids(models)
    if not wanted:
        return None
    found: list[LLMModel] = []
    for key in wanted:
        model = LLMModel.objects.filter(name=key).first()
        if model is None:
            try:
                model = LLMModel.objects.filter(pk=key).first()
            except Exception:  # not a UUID either
                model = None
        if model is None:
            raise BatchRefused(f"No model with id or name {key!r}.")
        found.append(model)
    return found


def select_user(email: str | None) -> User | None:
    if not email:
        return None
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        raise BatchRefused(f"No user with email {email!r}.")
    return user


class Selection(NamedTuple):
    repeats: int
    tests: list[TestCase]
    models: list[LLMModel] | None  # None: every active model
    user: User | None


def select_batch(options: dict[str, Any]) -> Selection:
    """What a run_batch command line selects, checked in the command's order; BatchRefused says what to change."""
    repeats = checked_repeats(options.get("repeats", 1))
    tests = select_tests(category=options.get("category"), tag=options.get("tag"), tests=options.get("tests"))
    return Selection(repeats, tests, select_models(options.get("models")), select_user(options.get("user")))


def batch_estimate(tests: list[TestCase], models: list[LLMModel] | None, repeats: int) -> RunEstimate:
    chosen = models if models is not None else list(LLMModel.objects.active().order_by("name"))
    return run_estimate(test_cases=tests, models=chosen, repeats=repeats)


def needs_confirmation(estimate: RunEstimate, threshold: Decimal | None = None) -> bool:
    return estimate.total_usd > (Decimal(settings.RUN_BATCH_CONFIRM_USD) if threshold is None else threshold)


def this_database() -> str:
    """The fingerprint of this process's default database, as a handed-off request carries its command's."""
    from django.db import connection

    from evaluations.batch_handoff import database_fingerprint

    if connection.vendor != "postgresql":
        return ""
    params = connection.settings_dict
    return database_fingerprint(
        host=str(params["HOST"] or ""), port=str(params["PORT"] or ""), name=str(params["NAME"])
    )


def _threshold(confirm_usd: str) -> Decimal | None:
    """The command's RUN_BATCH_CONFIRM_USD as it sent it; None (this process's) when it sent none. A value its own
    settings would refuse asks for confirmation: the command then starts, and its settings say what is wrong."""
    if not confirm_usd:
        return None
    try:
        value = Decimal(confirm_usd)
    except ArithmeticError:
        return Decimal(-1)
    return value if value.is_finite() and value >= 0 else Decimal(-1)


def estimate_line(estimate: RunEstimate) -> str:
    return f"Estimated cost: ${estimate.total_usd:.4f} ({estimate.evaluations} evaluations)."


@dataclass(frozen=True)
class StartAnswer:
    """A worker's answer to a handed-off request (JSON on the wire): started, refused, or ask the user first."""

    status: str  # "started", "refused", "confirm", "elsewhere" (another database) or "abandoned" (not answered)
    message: str = ""
    lines: tuple[str, ...] = ()  # what the command prints before it waits
    batch_id: str = ""  # the command reads the batch's size from its own database
    execution_ids: tuple[str, ...] = ()  # not sent: what the worker goes on to run (its first job's worth)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "lines": list(self.lines),
            "batch_id": self.batch_id,
        }


def start_requested_batch(
    options: dict[str, Any], *, batch_id: UUID, dispatch: bool, confirm_usd: str = ""
) -> StartAnswer:
    """Start what a handed-off `run_batch` command line asks for, with the command's own checks and words.

    `batch_id` comes with the request: a retried request finds the batch it started and starts nothing more.
    With `dispatch=False` the caller runs the first job's worth of executions itself (their ids are in the answer;
    the rest are dispatched as jobs, as `executions_start_batch` would); a retried request runs whatever of its
    batch is left (claiming keeps every pair to one run)."""
    existing = list(Execution.objects.filter(batch_id=batch_id).order_by("created_at"))
    if existing:
        unfinished = [execution for execution in existing if not execution.is_finished]
        if dispatch and unfinished:  # a duplicate delivery of a job is harmless: claiming is conditional
            executions_dispatch(execution_ids=[execution.pk for execution in unfinished])
        return _started(existing, lines=[], runs_here=[str(execution.pk) for execution in unfinished])
    try:
        chosen = select_batch(options)
        lines: list[str] = []
        estimate = None
        if not options.get("yes"):
            estimate = batch_estimate(chosen.tests, chosen.models, chosen.repeats)
            if needs_confirmation(estimate, _threshold(confirm_usd)):
                return StartAnswer(status="confirm")  # nothing started: the command asks at its terminal
            lines.append(estimate_line(estimate))
        executions = executions_start_batch(
            test_cases=chosen.tests,
            models=chosen.models,
            started_by=chosen.user,
            repeats=chosen.repeats,
            batch_id=batch_id,
            dispatch=dispatch,
            estimate=estimate,
        )
    except (BatchRefused, ApplicationError) as exc:
        return StartAnswer(status="refused", message=exc.message)
    logger.info("Started batch %s (%d executions) for a run_batch command.", batch_id, len(executions))
    runs_here = executions_dispatch_beyond_first_job(executions) if not dispatch else None
    return _started(executions, lines=lines, runs_here=runs_here)


def _started(executions: list[Execution], *, lines: list[str], runs_here: list[str] | None = None) -> StartAnswer:
    total = sum(execution.total_evaluations for execution in executions)
    batch_id = str(executions[0].batch_id)
    lines.append(f"Started {len(executions)} executions ({total} evaluations), batch {batch_id}, by a worker.")
    return StartAnswer(
        status="started",
        lines=tuple(lines),
        batch_id=batch_id,
        execution_ids=tuple(runs_here if runs_here is not None else (str(execution.pk) for execution in executions)),
    )
