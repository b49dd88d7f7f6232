"""Writes on executions: starting (one or a batch), cancelling, dispatching to workers, recovering.

The database row is the record of an execution's state; jobs take ids, are enqueued only after the
transaction that created the rows commits, and claim their work with a conditional update.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from catalog.models import LLMModel, TestCase
from evaluations.budgets import budget_reserve, budget_settle, provider_shares
from evaluations.estimates import RunEstimate, run_estimate
from evaluations.models import MAX_REPEATS, MIN_REPEATS, Execution, TestResult
from evaluations.runner.cancellation import cancel_unfinished
from evaluations.runner.notify import executions_finished_on_commit
from evaluations.runner.planning import model_parameters
from evaluations.sandbox import needs_sandbox, refuse_judges_outside_sandbox, refuse_models_outside_sandbox
from openbench.bulk import insert_rows, insert_values
from openbench.exceptions import ApplicationError
from openbench.logging import get_request_id

logger = logging.getLogger(__name__)

# One background job runs at most this many evaluations, so a huge batch still spreads over workers
# while one worker overlaps the calls of many executions.
JOB_MAX_EVALUATIONS = 2000


def _models_to_run(models: Sequence[LLMModel] | None, *, sandbox_only: bool = False) -> list[LLMModel]:
    if models is None:
        if sandbox_only:
            # A test not yet approved runs by default on the sandbox models only (SPEC §11).
            chosen = list(LLMModel.objects.active().sandbox().order_by("name"))
            if not chosen:
                raise ApplicationError(
                    "Tests that are not approved yet run only on sandbox models, and there are none.",
                    code="sandbox_only",
                    status=403,
                )
            return chosen
        chosen = list(LLMModel.objects.active().order_by("name"))
        if not chosen:
            raise ApplicationError("There are no active models to run the test against.", code="no_models")
        return chosen
    chosen = list({model.pk: model for model in models}.values())
    if not chosen:
        raise ApplicationError("Choose at least one model to run the test against.", code="no_models")
    inactive = sorted(model.name for model in chosen if not model.is_active)
    if inactive:
        raise ApplicationError(
            f"These models are not active and cannot be run: {', '.join(inactive)}.",
            code="inactive_model",
            details={"model_ids": [f"Model {name} is not active." for name in inactive]},
        )
    return chosen


# Enough ids for one `IN (...)` on every database, however large a batch is.
_RUNNABLE_CHUNK = 500


def _refuse_what_may_not_run(test_cases: Sequence[TestCase], *, user: User | None) -> None:
    """The one "may this user run this test" rule, for every interface (API, pages, commands).

    A user runs what `TestCase.objects.runnable_by(user)` holds: approved public tests, their own
    (non-archived) tests, and any live test for moderators. Without a user (an operator's command)
    any live test runs. Nobody runs an archived test. Seeing a test is the caller's check: a test the
    user may not see is a 404 before this is reached.
    """
    if user is None:
        refused = [test_case for test_case in test_cases if test_case.status == TestCase.Status.ARCHIVED]
    else:
        ids = [test_case.pk for test_case in test_cases]
        allowed: set[UUID] = set()
        for start in range(0, len(ids), _RUNNABLE_CHUNK):
            chunk = ids[start : start + _RUNNABLE_CHUNK]
            allowed.update(TestCase.objects.runnable_by(user).filter(pk__in=chunk).values_list("pk", flat=True))
        refused = [test_case for test_case in test_cases if test_case.pk not in allowed]
    if refused:
        first = refused[0]
        which = f": {first.title!r}." if len(test_cases) > 1 else "."
        raise ApplicationError(f"A {first.status} test cannot be run{which}", code="not_runnable", status=409)


def _checked_models(
    test_cases: Sequence[TestCase], models: Sequence[LLMModel] | None, *, started_by: User | None
) -> list[LLMModel]:
    """The models a run of `test_cases` takes, once the run rules allow it (who may run what, sandbox, judges)."""
    _refuse_what_may_not_run(test_cases, user=started_by)
    chosen = _models_to_run(models, sandbox_only=needs_sandbox(test_cases))
    refuse_models_outside_sandbox(test_cases, chosen)
    refuse_judges_outside_sandbox(test_cases)
    return chosen


def check_repeats(repeats: object) -> int:
    """`repeats` as SPEC §12 allows it (an integer from 1 to 20), else 400 naming `repeats`."""
    # bool is an int to Python, not to a caller who sent `true`.
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not MIN_REPEATS <= repeats <= MAX_REPEATS:
        message = f"Ensure this is a whole number from {MIN_REPEATS} to {MAX_REPEATS}."
        raise ApplicationError(f"repeats: {message}", details={"repeats": [message]})
    return repeats


def _new_execution(
    *,
    test_case: TestCase,
    models: Sequence[LLMModel],
    started_by: User | None,
    request_id: str,
    batch_id: UUID | None,
    repeats: int,
) -> Execution:
    return Execution(
        test_case=test_case,
        revision=test_case.revision,
        created_by=started_by,
        request_id=(request_id or get_request_id())[:128],
        batch_id=batch_id,
        status=Execution.Status.PENDING,
        repeats=repeats,
        # One evaluation per (model, sample): progress and the outcome counters count samples.
        total_evaluations=len(models) * repeats,
        config_snapshot={str(model.pk): model_parameters(model) for model in models},
    )


def _reserve_budget(
    *,
    test_cases: Sequence[TestCase],
    models: Sequence[LLMModel],
    started_by: User | None,
    executions: list[Execution],
    repeats: int,
    estimate: RunEstimate | None = None,
) -> None:
    """Reserve the run's estimate (SPEC §11) inside the starting transaction: 402 rolls the whole start back.

    A run without a user (an operator's `run_batch`, a schedule) is charged to the provider caps only.
    Every sample is a call, so k repeats reserve k times the cost of one. An `estimate` the caller made of this
    very run (run_batch asks with it first) is reserved as it is, not made again.
    """
    if estimate is None or not estimate.is_for(test_cases=test_cases, models=models, repeats=repeats):
        estimate = run_estimate(test_cases=test_cases, models=models, repeats=repeats)
    shares = provider_shares(((item.model, item.cost_usd) for item in estimate.by_model), estimate.judge_cost_usd)
    budget_reserve(user=started_by, shares=shares, executions=executions)


@transaction.atomic
def execution_start(
    *,
    test_case: TestCase,
    models: Sequence[LLMModel] | None = None,
    started_by: User | None,
    request_id: str = "",
    batch_id: UUID | None = None,
    repeats: int = 1,
) -> Execution:
    """Create a pending execution of `test_case` over `models` (default: every active model) and dispatch it.

    Each model is sampled `repeats` times (1–20, SPEC §12; else 400 naming `repeats`).
    Refused (409 `not_runnable`) unless `started_by` may run the test (see _refuse_what_may_not_run).
    A test that is not approved runs only on sandbox models (403 `sandbox_only`; by default on the active
    sandbox models). The run's estimate is reserved from the starter's daily budget and the providers'
    monthly caps (402 `budget_exceeded` / `provider_budget_exceeded`, nothing created).
    The models' parameters are snapshotted on the row; the background job is enqueued only after commit.
    """
    repeats = check_repeats(repeats)
    chosen = _checked_models([test_case], models, started_by=started_by)
    execution = _new_execution(
        test_case=test_case,
        models=chosen,
        started_by=started_by,
        request_id=request_id,
        batch_id=batch_id,
        repeats=repeats,
    )
    execution.save()
    # A new execution has no links yet: insert them, without the read of existing ones that .set() makes.
    insert_values(Execution.llm_models.through, ("execution_id", "llmmodel_id"), [(execution.pk, m.pk) for m in chosen])
    _with_models(execution, chosen)
    _reserve_budget(
        test_cases=[test_case], models=chosen, started_by=started_by, executions=[execution], repeats=repeats
    )
    totals = {execution.pk: execution.total_evaluations}
    transaction.on_commit(lambda: executions_dispatch(execution_ids=list(totals), totals=totals))
    return execution


def _with_models(execution: Execution, models: Sequence[LLMModel]) -> None:
    """Hold the models just linked as prefetch_related("llm_models") would (in the models' own ordering), so
    whoever renders the new execution does not read back what was just written."""
    linked = execution.llm_models.get_queryset()
    linked._result_cache = sorted(models, key=lambda model: (model.display_name, model.name))
    linked._prefetch_done = True  # type: ignore[attr-defined]
    execution._prefetched_objects_cache = {"llm_models": linked}  # type: ignore[attr-defined]


@transaction.atomic
def executions_start_batch(
    *,
    test_cases: Sequence[TestCase],
    models: Sequence[LLMModel] | None,
    started_by: User | None,
    request_id: str = "",
    repeats: int = 1,
    bypass_cache: bool = False,
    batch_id: UUID | None = None,
    dispatch: bool = True,
    estimate: RunEstimate | None = None,
) -> list[Execution]:
    """One execution per test, all sharing a batch id, dispatched so that one worker overlaps their calls.

    Refused as a whole (409 `not_runnable`) when `started_by` may not run one of the tests. Each model is
    sampled `repeats` times (1–20, SPEC §12; else 400 naming `repeats`). With `bypass_cache` every call
    reaches the model (a drift check must see today's answers, not the response cache's). `dispatch=False`
    is for a caller that runs the executions itself (a worker starting a handed-off run_batch). `estimate`: the
    caller's estimate of this run, if it just made one (reserved without being made again).
    """
    repeats = check_repeats(repeats)
    if not test_cases:
        raise ApplicationError("The batch has no tests to run.", code="no_tests")
    chosen = _checked_models(test_cases, models, started_by=started_by)
    new = partial(_new_execution, models=chosen, started_by=started_by, request_id=request_id, repeats=repeats)
    batch_id = batch_id or uuid.uuid4()
    executions = [new(test_case=test_case, batch_id=batch_id) for test_case in test_cases]
    if bypass_cache:
        for execution in executions:
            for params in execution.config_snapshot.values():
                params["bypass_cache"] = True
    # COPY on PostgreSQL: a batch is thousands of rows, each execution with its models' parameters as JSON.
    insert_rows(Execution, executions)
    insert_values(
        Execution.llm_models.through,
        ("execution_id", "llmmodel_id"),
        [(execution.pk, model.pk) for execution in executions for model in chosen],
    )
    _reserve_budget(
        test_cases=test_cases,
        models=chosen,
        started_by=started_by,
        executions=executions,
        repeats=repeats,
        estimate=estimate,
    )
    if dispatch:
        totals = {execution.pk: execution.total_evaluations for execution in executions}
        transaction.on_commit(lambda: executions_dispatch(execution_ids=list(totals), totals=totals))
    return executions


def execution_cancel(*, execution: Execution, actor: User | None) -> Execution:
    """Stop an unfinished execution at once: no new call starts, finished results stay, status `cancelled`."""
    execution.refresh_from_db(fields=["status"])
    if execution.is_finished:
        raise ApplicationError(
            f"This execution has already finished ({execution.status}).", code="already_finished", status=409
        )
    # The owner reads this text: it says who in general terms, never a moderator's e-mail (SPEC §10).
    # Who exactly is in the log line below, for the operators and moderators who need it.
    if actor is None:
        reason = "Cancelled."
    elif actor.pk == execution.created_by_id:
        reason = "Cancelled by its owner."
    else:
        reason = "Cancelled by a moderator."
    # The row, then the flag: the running job checks it before every call, so no call starts after this returns.
    updated = cancel_unfinished(execution.pk, reason)
    if updated:
        logger.info(
            "execution cancelled",
            extra={"execution_id": str(execution.pk), "actor_id": actor.pk if actor else None, "reason": reason},
        )
    execution.refresh_from_db()
    if updated:
        executions_finished_on_commit([execution.pk])  # a run_batch --wait of its batch learns of it at once
        budget_settle(execution_ids=[execution.pk])
    if not updated:
        raise ApplicationError(
            f"This execution has already finished ({execution.status}).", code="already_finished", status=409
        )
    return execution


def _job_chunks(execution_ids: Sequence[UUID | str], totals: dict[UUID, int] | None = None) -> list[list[str]]:
    """Group executions into jobs of at most JOB_MAX_EVALUATIONS evaluations (an execution is never split).
    `totals` ({id: total_evaluations}), when the caller knows them, saves reading them."""
    if totals is None:
        totals = dict(Execution.objects.filter(pk__in=list(execution_ids)).values_list("pk", "total_evaluations"))
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for execution_id in execution_ids:
        weight = max(1, totals.get(UUID(str(execution_id)), 1))
        if current and size + weight > JOB_MAX_EVALUATIONS:
            chunks.append(current)
            current, size = [], 0
        current.append(str(execution_id))
        size += weight
    if current:
        chunks.append(current)
    return chunks


def executions_dispatch(
    *,
    execution_ids: Sequence[UUID | str],
    takeover_stale_after: float | None = None,
    totals: dict[UUID, int] | None = None,
) -> int:
    """Hand executions to the background: django-rq when Redis is configured, else this process's executor.

    Returns the number of jobs. Call only after the rows are committed (services use on_commit). `totals`
    ({id: total_evaluations}) spares the read that sizes the jobs when the caller just wrote the rows.
    """
    chunks = _job_chunks(execution_ids, totals)
    # Imported here, and only the one in use: with rq, the web process never loads the engine (its
    # provider SDKs take ~0.1 s to import, which the first run started after a deploy would wait for).
    if settings.USE_RQ:
        from evaluations.jobs import enqueue_run

        for chunk in chunks:
            enqueue_run(execution_ids=chunk, takeover_stale_after=takeover_stale_after)
    else:
        from evaluations.executor import submit

        for chunk in chunks:
            submit(execution_ids=chunk, takeover_stale_after=takeover_stale_after)
    return len(chunks)


def executions_dispatch_beyond_first_job(executions: Sequence[Execution]) -> list[str]:
    """Dispatch every job's worth of just-committed `executions` but the first, and return the first's ids for the
    caller to run itself (a worker starting a handed-off run_batch): a big batch still spreads over workers."""
    totals = {execution.pk: execution.total_evaluations for execution in executions}
    first, *rest = _job_chunks(list(totals), totals)
    if rest:
        executions_dispatch(execution_ids=[execution_id for chunk in rest for execution_id in chunk], totals=totals)
    return first


def executions_find_stale(*, stale_after: float | None = None) -> list[Execution]:
    """Unfinished executions nobody is working on: running without a recent heartbeat, or pending too long."""
    seconds = settings.EVAL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    running_stale = Q(status=Execution.Status.RUNNING) & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
    pending_stale = Q(status=Execution.Status.PENDING, created_at__lt=cutoff)
    return list(Execution.objects.filter(running_stale | pending_stale).order_by("created_at"))


# A model's health (SPEC §3) comes from its latest calls: at most this many, none older than this.
HEALTH_WINDOW = 20
HEALTH_MAX_AGE = timedelta(hours=24)
HEALTH_DEGRADED_AT = 0.1  # share of those calls the provider failed
HEALTH_DOWN_AT = 0.5
# Failures that say nothing about the provider: the answer came back and our scoring (or judge) failed.
NOT_PROVIDER_FAILURES = ("scoring_error", "judge_error")


def health_of(outcomes: Sequence[tuple[str, str]]) -> str:
    """healthy / degraded / down from (status, error_type) of a model's latest calls, newest first."""
    if not outcomes:
        return LLMModel.Health.UNKNOWN
    failures = sum(
        1
        for status, error_type in outcomes
        if status in (TestResult.Status.FAILED, TestResult.Status.TIMEOUT) and error_type not in NOT_PROVIDER_FAILURES
    )
    share = failures / len(outcomes)
    if share >= HEALTH_DOWN_AT:
        return LLMModel.Health.DOWN
    if share >= HEALTH_DEGRADED_AT:
        return LLMModel.Health.DEGRADED
    return LLMModel.Health.HEALTHY


def models_health_refresh(*, model_ids: Sequence[UUID | str]) -> dict[str, str]:
    """Re-derive the health of the given models from their latest calls (the engine calls it after a run).

    Calls answered from the response cache and cancelled ones say nothing about the provider and are left
    out. A model with no call in the window keeps the health it had. Returns {model id: health}.
    """
    ids = sorted({UUID(str(model_id)) for model_id in model_ids})
    if not ids:
        return {}
    now = timezone.now()
    recent_calls = TestResult.objects.filter(created_at__gte=now - HEALTH_MAX_AGE, cached=False).exclude(
        status=TestResult.Status.CANCELLED
    )
    outcomes: dict[str, list[tuple[str, str]]] = {}
    for model_id in ids:
        # One short walk down the (model, created_at) index per model: as cheap for a model with a
        # million results as for one with ten, unlike a window over everything of the last day.
        calls = list(
            recent_calls.filter(model_id=model_id)
            .order_by("-created_at")
            .values_list("status", "error_type")[:HEALTH_WINDOW]
        )
        if calls:
            outcomes[str(model_id)] = calls
    health = {model_id: health_of(calls) for model_id, calls in outcomes.items()}
    for value in set(health.values()):
        LLMModel.objects.filter(pk__in=[m for m, h in health.items() if h == value]).update(
            health_status=value, health_checked_at=now
        )
    return health
