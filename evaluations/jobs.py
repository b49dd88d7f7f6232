"""django-rq entry points of the engine: they take ids, never instances, and call the runner.

One worker overlaps many jobs (SPEC §15). Each run, evaluation or batch, is its own rq job, and rq runs a
worker's jobs one after another; so the job function, once running, keeps taking further waiting jobs
of its queue into its event loop (`RqIntake`) instead of leaving them to wait for it to end:

* Taking a job is rq's own dequeue (`Queue.dequeue_any`: an atomic LMOVE into the queue's intermediate
  list), so two workers never take the same job; it is then marked started exactly as a worker marks
  the job it runs (status `started`, worker name, an rq execution in the StartedJobRegistry, removed
  from the intermediate list).
* Its executions are claimed under the taken job's own id, as if it ran alone: lease, counters, status,
  cancel and recovery are those of a job of its own.
* When its executions are closed, the job is finished in rq as a worker finishes one (result, finished
  registry, started registry cleaned). If its executions could not run, or the engine crashed, it is
  failed or retried as rq would (same retries left).
* While it runs, its rq execution gets a heartbeat from the engine; the job ids taken are kept in a
  Redis set named after the running job. If the work horse dies, `EvaluationWorker` reads that set and
  retries (or fails) each taken job at once, as rq does for the job the horse was running. If the whole
  worker dies, rq's registry cleanup retries them once their heartbeat has expired, and
  `recover_executions` finds their stale executions anyway; a retry carries the same job id, hence the
  same lease, and runs only the missing pairs.
* A worker takes a job only while it has room: fewer than `EVAL_WORKER_MAX_EXECUTIONS` executions and
  fewer pairs waiting than its concurrency. So it takes what it can start soon and leaves the rest of a
  burst to other workers; and it stops taking jobs after a while (well before the job's timeout).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import django_rq
from rq import Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob

from evaluations.signals import queue_drained_send
from openbench import tracing

if TYPE_CHECKING:
    from redis import Redis
    from rq.executions import Execution as RqExecution
    from rq.job import Job
    from rq.queue import Queue

    from evaluations.batch_selection import StartAnswer
    from evaluations.runner.tickets import RunReport, Ticket

logger = logging.getLogger(__name__)

QUEUE = "evaluations"
# A worker killed mid-job leaves the job "abandoned"; rq then retries it. The retry carries the same job
# id, which is the executions' lease, so it takes them straight back and runs only the missing pairs.
JOB_RETRIES = 3
# rq's defaults: a started job's heartbeat is renewed every 30 s and expires 60 s later.
HEARTBEAT_TTL = 90
# A running job takes further jobs for at most this long (and at most a quarter of its own timeout).
PULL_SECONDS = 600.0
TAKEN_KEY = "openbench:eval:taken:"  # + the running job's id: the set of "job_id:rq_execution_id" it took in
TRACE_META = "trace"  # job.meta key: the W3C trace context of the request that enqueued the job (openbench.tracing)


def taken_key(job_id: str) -> str:
    return TAKEN_KEY + job_id


class EvaluationJob(RqJob):
    """rq's job class for this project (settings.RQ["JOB_CLASS"]): rq's Job, except that a `run_batch --wait` request,
    which manage.py puts on the queue as a job id alone (evaluations.batch_handoff), becomes a job when a worker
    dequeues its id: the first fetch of such an id takes the request's options (atomically: one worker gets them)
    and saves the job, with this worker's job timeout and the request's retries. Any other missing job is missing."""

    @classmethod
    def fetch(cls, id: str, connection: Redis | None = None, serializer: Any = None) -> EvaluationJob:
        try:
            return cast(EvaluationJob, super().fetch(id, connection=connection, serializer=serializer))
        except NoSuchJobError:
            job = _requested_job(id, connection) if connection is not None else None
            if job is None:
                raise
            return job


def _requested_job(job_id: str, connection: Redis) -> EvaluationJob | None:
    from evaluations.batch_handoff import REPLY_TTL, REQUEST_FUNCTION, REQUEST_KEY

    with connection.pipeline() as pipeline:  # MULTI: of two fetches of the id, one gets the options
        pipeline.get(REQUEST_KEY + job_id)
        pipeline.delete(REQUEST_KEY + job_id)
        options, _ = pipeline.execute()
    if options is None:
        return None  # withdrawn by its command, expired, or never a request
    queue = django_rq.get_queue(QUEUE, connection=connection, job_class=EvaluationJob)
    job = queue.create_job(
        REQUEST_FUNCTION,
        args=(json.loads(options),),
        job_id=job_id,
        result_ttl=REPLY_TTL,
        retry=Retry(max=JOB_RETRIES),
        description="run_batch request",
    )
    job.save()
    return cast(EvaluationJob, job)


def queue_of(job: Job) -> Queue:
    """The queue a job came from, on the job's own Redis client: django_rq.get_queue alone builds a new client
    (a TCP connection, SELECT, INFO) on each call, twice per job."""
    return django_rq.get_queue(job.origin, connection=job.connection)


class RqIntake:
    """Takes waiting jobs of the running job's queue into its engine (see the module docstring)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.connection: Redis = job.connection
        self.queue: Queue = queue_of(job)
        self.worker_name = job.worker_name or ""
        self.pull_for = min(PULL_SECONDS, (job.timeout or 3600) / 4) if (job.timeout or 0) > 0 else PULL_SECONDS
        self.running: dict[str, tuple[Job, RqExecution]] = {}

    async def take(self, *, wait: float) -> Ticket | None:
        return await asyncio.to_thread(self._take, wait)

    def _take(self, wait: float) -> Ticket | None:
        # Busy: block briefly on the queue's list (rotating its head onto itself), so a job posted now is
        # seen now; then take it atomically.
        if wait > 0 and self.connection.blmove(self.queue.key, self.queue.key, wait, "LEFT", "LEFT") is None:  # type: ignore[arg-type]
            return None
        dequeued = self.queue.dequeue_any(
            [self.queue], None, connection=self.connection, job_class=self.queue.job_class
        )
        if dequeued is None:
            return None
        job, _ = dequeued
        if job.func_name == f"{__name__}.run_batch_request_job":
            return self._take_request(job)
        if job.func_name != f"{__name__}.run_executions_job":
            # Not ours to run in this loop (another function on this queue): put it back at the front.
            with self.connection.pipeline() as pipeline:
                pipeline.lrem(self.queue.intermediate_queue_key, 1, job.id)
                pipeline.lpush(self.queue.key, job.id)
                pipeline.execute()
            return None
        self._mark_taken(job)
        execution_ids, takeover_stale_after = job.args[0], job.args[1] if len(job.args) > 1 else None
        logger.info("Took in job %s (%d executions) while running job %s.", job.id, len(execution_ids), self.job.id)
        return self._ticket(job, execution_ids, takeover_stale_after)

    def _mark_taken(self, job: Job) -> None:
        """Mark a dequeued job started, as a worker marks the job it runs, and remember it (taken set, heartbeat)."""
        from rq.executions import Execution as RqExecution

        with self.connection.pipeline() as pipeline:
            job.prepare_for_execution(self.worker_name, pipeline=pipeline)
            execution = RqExecution.create(job, HEARTBEAT_TTL, pipeline=pipeline)
            pipeline.lrem(self.queue.intermediate_queue_key, 1, job.id)
            pipeline.sadd(taken_key(self.job.id), execution.composite_key)
            pipeline.expire(taken_key(self.job.id), int(self.job.timeout or 3600) + HEARTBEAT_TTL)
            pipeline.execute()
        self.running[job.id] = (job, execution)

    def _ticket(self, job: Job, execution_ids: Sequence[Any], takeover_stale_after: float | None) -> Ticket:
        from evaluations.runner.tickets import Ticket

        return Ticket(
            execution_ids=[str(execution_id) for execution_id in execution_ids],
            lease=job.id,
            takeover_stale_after=takeover_stale_after,
            on_done=functools.partial(self._done, job.id),
            trace=dict(job.meta.get(TRACE_META) or {}),
        )

    def _take_request(self, job: Job) -> Ticket | None:
        """A handed-off run_batch, taken in as any job: answered here and now (the person waits, and the busy loop
        would otherwise keep finding it at the head of the queue), then its first job's worth of executions runs
        in this loop under the request's own id, exactly as in a work horse of its own (run_batch_request_job)."""
        from django.db import connection as database

        self._mark_taken(job)
        try:
            answer = answer_batch_request(job.args[0], self.connection, dispatch=False)
        except Exception as exc:
            logger.exception("Could not answer run_batch request %s.", job.id)
            self._end(job.id, None, f"{type(exc).__name__}: {exc}")
            return None
        finally:
            database.close()  # this thread's connection (a pool's, on PostgreSQL) is not the engine's
        if answer.status != "started":
            self._end(job.id, answer.as_dict(), None)
            return None
        logger.info(
            "Took in run_batch request %s (batch %s) while running job %s.", job.id, answer.batch_id, self.job.id
        )
        return self._ticket(job, answer.execution_ids, None)

    def _done(self, job_id: str, report: RunReport, error: str | None) -> None:
        """End a taken job in rq as a worker ends the job it ran: finished with its result, or failed/retried."""
        self._end(job_id, job_result(report) if error is None else None, error)

    def _end(self, job_id: str, result: dict[str, Any] | None, error: str | None) -> None:
        from rq.job import JobStatus
        from rq.utils import now

        if job_id not in self.running:
            return
        job, execution = self.running.pop(job_id)
        job.ended_at = now()
        with self.connection.pipeline() as pipeline:
            if error is None:
                job._result = result
                result_ttl = job.get_result_ttl(500)
                job._handle_success(result_ttl, pipeline=pipeline, worker_name=self.worker_name)
                job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            elif job.should_retry:
                job.retry(self.queue, pipeline)
            else:
                job.set_status(JobStatus.FAILED, pipeline=pipeline)
                job._handle_failure(error, pipeline=pipeline, worker_name=self.worker_name)
            execution.delete(job=job, pipeline=pipeline)
            pipeline.srem(taken_key(self.job.id), execution.composite_key)
            pipeline.execute()

    def heartbeat(self) -> None:
        """Renew the rq heartbeat of the jobs taken in and still running (the worker renews its own job's)."""
        from rq.utils import now

        if not self.running:
            return
        with self.connection.pipeline() as pipeline:
            for job, execution in list(self.running.values()):  # the intake's thread adds and ends jobs meanwhile
                execution.heartbeat(job.started_job_registry, HEARTBEAT_TTL, pipeline=pipeline)
                job.heartbeat(now(), HEARTBEAT_TTL, pipeline=pipeline)
            pipeline.expire(taken_key(self.job.id), int(self.job.timeout or 3600) + HEARTBEAT_TTL)
            pipeline.execute()


def job_result(report: RunReport, *, own: bool = False) -> dict[str, Any]:
    """An rq job's return value: what its own executions did (and, for the running job, the jobs it took in)."""
    return {
        "claimed": report.own_claimed if own else len(report.claimed),
        "results": report.own_results if own else report.results,
        "results_taken_in": report.results - report.own_results if own else 0,
        "calls": report.calls,
        "retries": report.retries,
        "cache_hits": report.cache_hits,
        "overlapped": report.overlapped,
    }


def run_executions_job(execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> dict[str, Any]:
    """Run the given executions (claimed with a conditional update: a duplicate delivery does nothing),
    and the further jobs taken in meanwhile (see the module docstring)."""
    return _run_and_take_in(get_current_job(), execution_ids, takeover_stale_after)


def _run_and_take_in(
    job: Job | None, execution_ids: Sequence[str], takeover_stale_after: float | None = None
) -> dict[str, Any]:
    # The engine is imported by the worker (EvaluationWorker preloads it), not by web processes that enqueue.
    from evaluations.runner.run import run_executions

    intake = RqIntake(job) if job is not None else None
    # A forked work horse ends with os._exit: the job's spans are exported before it returns.
    with tracing.job_span("evaluations job", job.meta.get(TRACE_META) if job else None, flush_after=True):
        report = run_executions(
            execution_ids, lease=job.id if job else "", takeover_stale_after=takeover_stale_after, intake=intake
        )
    if job is not None:
        job.connection.delete(taken_key(job.id))
    # After the executions' final status is saved (listeners may read it), and after the job's own
    # executions are visible as finished. Not between the jobs of a batch: the next one would wait,
    # and the one after would change scores again.
    if report.results and not (job is not None and queue_of(job).count):
        queue_drained_send()
    return job_result(report, own=True)


def _claim_request(connection: Redis, request: dict[str, Any], state_key: str) -> bool:
    """Claim a handed-off request for this worker ("taken"), as its command claims it when it stops waiting
    ("gone"); True to start it. A retry of a request taken here goes on (so does one whose claim has expired, once
    its batch exists: only an on-time claim makes one). A first delivery after the request's `expires_at`
    (Redis's clock: the command has stopped waiting by then, whatever became of its own claim) starts nothing,
    and neither will its retries. Whether it is late is settled before anything is claimed: a failure on the way
    leaves no "taken" behind for a retry to go on from."""
    from evaluations.batch_handoff import REPLY_TTL
    from evaluations.models import Execution

    state = connection.get(state_key)
    if state is not None:
        return bool(state == b"taken")
    # Kept as long as the command keeps its own claim ("gone"), which outlasts its waiting.
    ttl = max(REPLY_TTL, int(_seconds(request.get("state_ttl"), REPLY_TTL)))
    if "expires_at" in request:
        seconds, microseconds = cast(tuple[int, int], connection.time())
        if seconds + microseconds / 1e6 > _seconds(request["expires_at"], -math.inf):  # unreadable: passed
            try:
                batch_id = uuid.UUID(str(request.get("batch_id")))
            except ValueError:
                batch_id = None
            if batch_id is None or not Execution.objects.filter(batch_id=batch_id).exists():
                connection.set(state_key, "gone", nx=True, ex=ttl)
                return False
            # A retry, long after an on-time claim (its batch exists): it runs what is left of it.
    if connection.set(state_key, "taken", nx=True, ex=ttl):
        return True
    return bool(connection.get(state_key) == b"taken")


def _seconds(value: Any, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if math.isfinite(seconds) else default


def answer_batch_request(request: dict[str, Any], connection: Redis, *, dispatch: bool) -> StartAnswer:
    """Start what a handed-off `run_batch` asks for and push the answer onto the list the command reads
    (evaluations.batch_handoff). Every failure is an answer too: the command must not wait for nothing.

    Started only after claiming the request (SET NX on its state key): a command that stopped waiting claimed it
    first, and then nothing starts ("abandoned", nobody to answer); a retry of a request claimed here goes on. A
    request from a command on another database is answered "elsewhere", and that command starts its batch itself."""
    from evaluations.batch_handoff import REPLY_KEY, REPLY_TTL, STATE_SUFFIX
    from evaluations.batch_selection import StartAnswer, start_requested_batch, this_database

    reply_to = str(request.get("reply_to", ""))
    if not reply_to.startswith(REPLY_KEY):
        raise ValueError(f"A run_batch request must name its reply list ({REPLY_KEY}...), not {reply_to!r}.")
    if request.get("database") != this_database():
        answer = StartAnswer(status="elsewhere")
    elif not _claim_request(connection, request, reply_to + STATE_SUFFIX):
        logger.info("A run_batch request was dropped, nothing started: its command had stopped waiting for an answer.")
        return StartAnswer(status="abandoned")
    else:
        try:
            batch_id = uuid.UUID(str(request["batch_id"]))
            answer = start_requested_batch(
                dict(request["options"]),
                batch_id=batch_id,
                dispatch=dispatch,
                confirm_usd=str(request.get("confirm_usd") or ""),
            )
        except Exception:
            logger.exception("Could not start the batch of a run_batch request.")
            answer = StartAnswer(status="refused", message="The worker could not start the batch; see its log.")
    with connection.pipeline() as pipeline:
        pipeline.rpush(reply_to, json.dumps(answer.as_dict()))
        pipeline.expire(reply_to, REPLY_TTL)
        pipeline.execute()
    return answer


def run_batch_request_job(request: dict[str, Any]) -> dict[str, Any]:
    """rq entry point of a `run_batch --wait` handed off before its Django was set up (evaluations.batch_handoff).

    The work horse that starts the batch runs it, under this job's id as the lease, as the job the worker
    would otherwise dequeue and fork for next; a retry (same id, same batch id) takes back what is left."""
    job = get_current_job()
    connection = job.connection if job is not None else _enqueue_connection()
    answer = answer_batch_request(request, connection, dispatch=job is None)
    if job is None or answer.status != "started":
        return answer.as_dict()
    return {"answer": answer.as_dict(), **_run_and_take_in(job, list(answer.execution_ids))}


@functools.cache
def _enqueue_connection() -> Redis:
    """This process's Redis client for enqueueing. django_rq.get_queue builds a new client (and pool) on every
    call, so each enqueue used to open a TCP connection, SELECT its db and ask the server's version (INFO)
    before writing the job. redis-py clients are thread-safe, and their pool starts afresh in a forked child."""
    return django_rq.get_connection(QUEUE)


def enqueue_run(*, execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> str:
    """Put one engine job on the `evaluations` queue; returns the job id. One round trip to Redis."""
    queue = django_rq.get_queue(QUEUE, connection=_enqueue_connection())
    # One MULTI for the queue's registration and the job (rq sends them as two transactions otherwise).
    with queue.connection.pipeline() as pipeline:
        job = queue.enqueue(
            run_executions_job,
            list(execution_ids),
            takeover_stale_after,
            retry=Retry(max=JOB_RETRIES),
            description=f"evaluate {len(execution_ids)} execution(s)",
            meta={TRACE_META: tracing.trace_carrier()},
            pipeline=pipeline,
        )
        pipeline.execute()
    logger.info("Enqueued job %s for %d execution(s).", job.id, len(execution_ids))
    return str(job.id)


def end_taken_jobs(*, connection: Redis, job_id: str, reason: str) -> int:
    """After the work horse running `job_id` died: retry (or fail) the jobs it had taken in, as rq does
    for the job itself. Runs in the worker's main process, so nothing of the dead horse runs any more."""
    from rq.exceptions import NoSuchJobError
    from rq.executions import Execution as RqExecution
    from rq.job import Job, JobStatus
    from rq.queue import Queue
    from rq.utils import now

    key = taken_key(job_id)
    members = [
        member.decode() if isinstance(member, bytes) else str(member)
        for member in cast(set[Any], connection.smembers(key))
    ]
    ended = 0
    for composite in members:
        execution = RqExecution.from_composite_key(composite, connection=connection)
        try:
            job = Job.fetch(execution.job_id, connection=connection)
        except NoSuchJobError:  # expired or deleted meanwhile
            continue
        if job.get_status() != JobStatus.STARTED:
            continue
        queue = Queue(job.origin, connection=connection)
        job.ended_at = now()
        with connection.pipeline() as pipeline:
            execution.delete(job=job, pipeline=pipeline)
            if job.should_retry:
                job.retry(queue, pipeline)
            else:
                job.set_status(JobStatus.FAILED, pipeline=pipeline)
                job._handle_failure(reason, pipeline=pipeline)
            pipeline.execute()
        ended += 1
    connection.delete(key)
    if ended:
        logger.warning("Job %s's work horse died: %d jobs it had taken in were retried or failed.", job_id, ended)
    return ended
