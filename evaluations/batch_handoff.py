"""`run_batch --wait` hands its request to a running worker before it sets Django up (SPEC §15, small fixed costs).

A command process spends most of a second importing Django and the apps before it can create one execution,
while a worker has all of that loaded already. So `manage.py run_batch ... --wait` with Redis first puts its
request on the `evaluations` queue (Python, argparse and hiredis over a socket: ~0.05 s; evaluations.handoff_client)
and waits for a worker's answer; the worker resolves the tests and models, checks the cost and the budgets,
creates the executions, answers, and runs them (`evaluations.jobs.run_batch_request_job`,
`evaluations.batch_selection`). Only then does the command set Django up, while the calls run, and it goes on as
before: the same lines, progress bar, summary and exit code.

The request goes on the queue as an rq job id alone, its options stored beside it (REQUEST_KEY + the id): the
command imports neither redis-py nor rq, which cost it ~0.15 s. The worker that takes the id makes it the job
(`evaluations.jobs.EvaluationJob`, rq's job class in the settings), with the worker's own job timeout and the
retries every engine job has.

Nothing is decided here. The worker applies the command's own checks and answers with the command's own error
text; when the estimate asks for the user's confirmation it starts nothing, and the command asks at its
terminal as before. If no worker takes the request within RUN_BATCH_HANDOFF_PICKUP_SECONDS, the command
claims the request's state key for itself (SET NX "gone"), withdraws it from the queue and starts the batch
itself. A worker starts a request only after claiming that key ("taken"), and a command that stops waiting (a
timeout, Ctrl-C, lost Redis) first claims it too: so a batch never starts behind the back of a command that has
given up on it, and when the worker won, the command's error names the batch. A request taken after its command
stopped waiting (its deadline, on Redis's clock) starts nothing either, however late rq delivers it. The request
also carries a fingerprint of the command's database (a worker of another deployment on the same Redis starts
nothing; the command then starts the batch itself) and the command's RUN_BATCH_CONFIRM_USD.
RUN_BATCH_HANDOFF=false turns the hand-off off.

This module imports nothing of Django or of the apps at import time (nor dataclasses: NamedTuples cost nothing more
to import): manage.py calls it before django.setup().
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import uuid
from typing import Any, NamedTuple

QUEUE = "evaluations"  # evaluations.jobs.QUEUE, which imports Django
QUEUE_KEY = "rq:queue:" + QUEUE  # the list rq's workers take job ids from (at the front: LPUSH)
JOB_KEY = "rq:job:"  # + the job id: rq's hash of a job, once a worker has made the request its job
REQUEST_FUNCTION = "evaluations.jobs.run_batch_request_job"
REQUEST_KEY = "openbench:batch-request-job:"  # + the job id: the request's options, until a worker takes it
REPLY_KEY = "openbench:batch-request:"  # + the request id: a list the worker pushes its answer onto
REPLY_TTL = 600  # seconds an answer nobody read is kept
STATE_SUFFIX = ":state"  # reply key + this: "taken" (by a worker) or "gone" (the command gave up), set NX
# Django's own options of run_batch (it has no system checks, so no --skip-checks): harmless ones are accepted;
# --settings and --pythonpath change what the command would run against, so a command line with them is left to
# Django, as is anything its parser would refuse.
_DJANGO_FLAGS = ("--traceback", "--no-color", "--force-color")
_FALSE = {"0", "false", "no", "off"}


class Timeouts(NamedTuple):
    pickup: float  # RUN_BATCH_HANDOFF_PICKUP_SECONDS: no worker took the request by then: withdrawn, run here
    answer: float  # RUN_BATCH_HANDOFF_ANSWER_SECONDS: a worker took it; it has this long more to answer


def handoff_timeouts(environ: dict[str, str] | None = None) -> Timeouts:
    """The hand-off's timeouts from the environment (the settings call this too, to refuse bad values)."""
    environ = dict(os.environ if environ is None else environ)
    try:
        timeouts = Timeouts(
            pickup=float(environ.get("RUN_BATCH_HANDOFF_PICKUP_SECONDS", "2")),
            answer=float(environ.get("RUN_BATCH_HANDOFF_ANSWER_SECONDS", "120")),
        )
    except ValueError:
        raise ValueError("RUN_BATCH_HANDOFF_PICKUP_SECONDS and ..._ANSWER_SECONDS must be numbers.") from None
    if not 0 < timeouts.pickup < float("inf") or not 0 < timeouts.answer < float("inf"):
        # 0 would be "block forever" to BLPOP.
        raise ValueError("RUN_BATCH_HANDOFF_PICKUP_SECONDS and ..._ANSWER_SECONDS must be above 0.")
    return timeouts


def seconds_above_zero(text: str) -> float:
    """--poll: a number of seconds above 0 (0 would read the rows without pause while waiting)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def add_run_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """run_batch's options: the command's parser and the hand-off's read the command line the same way."""
    parser.add_argument("--category", help="Only tests of this category.")
    parser.add_argument("--tag", help="Only tests with this tag.")
    parser.add_argument("--tests", nargs="+", help="Test ids (space- or comma-separated).")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--models", nargs="+", help="Model ids or names (space- or comma-separated).")
    models.add_argument("--all-models", action="store_true", help="Every active model (the default).")
    parser.add_argument(
        "--repeats", type=int, default=1, metavar="K", help="Sample each (test, model) K times, 1 to 20 (SPEC §12)."
    )
    parser.add_argument("--wait", action="store_true", help="Wait with a progress bar and print a summary.")
    parser.add_argument("--user", help="Email of the user the executions are recorded as started by.")
    parser.add_argument(
        "--poll", type=seconds_above_zero, default=0.5, help="Seconds between progress checks while waiting."
    )
    parser.add_argument(
        "--estimate", action="store_true", help="Print the estimated tokens and cost (per model, total); run nothing."
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="Start without asking, whatever the estimate (else above RUN_BATCH_CONFIRM_USD it asks).",
    )


def parse_handoff(argv: list[str]) -> dict[str, Any] | None:
    """The options of a `manage.py run_batch ... --wait` command line, or None if it is not one to hand off."""
    if len(argv) < 2 or argv[1] != "run_batch":
        return None
    # No abbreviations: Django's parser has more options (--version, --settings, ...), so a prefix that is unique
    # here can be ambiguous there.
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False, allow_abbrev=False)
    add_run_batch_arguments(parser)
    parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=1)
    for flag in _DJANGO_FLAGS:
        parser.add_argument(flag, action="store_true")
    try:
        parsed, unknown = parser.parse_known_args(argv[2:])
    except (argparse.ArgumentError, SystemExit, ValueError):
        return None  # Django's parser says what is wrong
    if unknown or not parsed.wait or parsed.estimate or (parsed.no_color and parsed.force_color):
        return None
    names = ("category", "tag", "tests", "models", "repeats", "user", "yes")
    return {name: getattr(parsed, name) for name in names}


def database_fingerprint(*, host: str, port: str, name: str) -> str:
    """Which PostgreSQL database, from the command's DATABASE_URL or a worker's settings: equal when both would
    write the same rows (spelled the same way: `localhost` and `127.0.0.1` differ, which only costs a hand-off)."""
    import hashlib

    return hashlib.sha256(f"{host or 'localhost'}|{port or '5432'}|{name}".encode()).hexdigest()[:16]


def _command_database() -> str | None:
    """The fingerprint of the command's DATABASE_URL; None when it is not PostgreSQL (no hand-off then)."""
    from urllib.parse import unquote, urlsplit

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return None
    try:
        parts = urlsplit(url)
        port = str(parts.port or "")
    except ValueError:
        return None
    return database_fingerprint(host=parts.hostname or "", port=port, name=unquote(parts.path.lstrip("/")))


def _redis_url() -> str | None:
    """REDIS_URL as the settings read it, or None when the hand-off does not apply (no Redis, a .env file to
    read, other settings, or RUN_BATCH_HANDOFF=false)."""
    if os.environ.get("RUN_BATCH_HANDOFF", "true").strip().lower() in _FALSE:
        return None
    if os.environ.get("DJANGO_SETTINGS_MODULE", "openbench.settings") != "openbench.settings":
        return None
    if os.environ.get("READ_DOT_ENV", "").strip().lower() not in _FALSE | {""}:
        return None  # the settings would read REDIS_URL from .env: left to them
    url = os.environ.get("REDIS_URL", "").strip()
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


class HandOffLost(Exception):
    """A worker took a request and did not answer in time."""


class HandedOff(NamedTuple):
    """What became of a handed-off command line: the worker's answer (a dict: status "started", "refused",
    "confirm" or "elsewhere"), None when the command is to start the batch itself, or the error to stop with."""

    answer: dict[str, Any] | None
    error: str = ""


class _Request(NamedTuple):
    client: Any  # evaluations.handoff_client.HandoffConnection
    job_id: str
    reply_key: str
    batch_id: str
    state_ttl: int  # seconds the command's claim ("gone") is kept: past the request's deadline

    def give_up(self) -> bool:
        """Stop waiting: withdraw the request and claim its state for the command. True when no worker will start
        it; False when a worker claimed it first (its batch may be running)."""
        # The claim decides: a worker that takes the id afterwards finds it "gone" and starts nothing. Only then is
        # it taken off the queue (and its options dropped): a claimed request's retry, rq's, must stay queued.
        claimed = self.client.execute(("SET", self.reply_key + STATE_SUFFIX, "gone", "NX", "EX", self.state_ttl))[0]
        if claimed:
            with contextlib.suppress(Exception):  # dead either way: no worker will start it
                self.client.execute(("LREM", QUEUE_KEY, 1, self.job_id), ("DEL", REQUEST_KEY + self.job_id))
            return True
        # Claimed first by a worker: "taken" (it starts it), or "gone" (it found the request past its deadline).
        return bool(self.client.execute(("GET", self.reply_key + STATE_SUFFIX))[0] == b"gone")

    def withdraw(self) -> bool | None:
        """`give_up` after something went wrong; None when Redis cannot be reached (nothing is known)."""
        try:
            return self.give_up()
        except Exception:
            return None

    def status(self) -> bytes | None:
        """rq's status of the request's job (b"started", b"failed", ...); None before a worker has made it a job."""
        status: bytes | None = self.client.execute(("HGET", JOB_KEY + self.job_id, "status"))[0]
        return status


class _NotSent(Exception):
    """The request is not on the queue (or was withdrawn): the command starts the batch itself."""


class _MaybeSent(Exception):
    """Redis broke while the request was being queued, and it could not be withdrawn: a worker may start it."""

    def __init__(self, request: _Request, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.request, self.cause = request, cause


def _send(url: str, options: dict[str, Any], timeouts: Timeouts, database: str) -> _Request:
    from evaluations.handoff_client import HandoffConnection

    waits = timeouts.pickup + timeouts.answer
    try:
        client = HandoffConnection(url, connect_timeout=2)
        seconds, microseconds = client.execute(("TIME",))[0]
    except Exception as exc:
        raise _NotSent from exc
    job_id = uuid.uuid4().hex
    reply_key = REPLY_KEY + job_id
    # The batch id is chosen here, so that a retried request finds the batch it already started.
    batch_id = str(uuid.uuid4())
    request = _Request(client, job_id, reply_key, batch_id, state_ttl=max(REPLY_TTL, math.ceil(waits) + 60))
    options_json = json.dumps(
        {
            "options": options,
            "reply_to": reply_key,
            "batch_id": batch_id,
            "database": database,
            # The command's threshold, not the worker's: the person at this terminal is the one asked.
            "confirm_usd": os.environ.get("RUN_BATCH_CONFIRM_USD", "").strip(),
            # Redis's clock: after this the command has stopped waiting, whatever became of its claim; a worker
            # that takes the request later (a delivery delayed past every timeout) starts nothing.
            "expires_at": int(seconds) + int(microseconds) / 1e6 + waits + 5,
            "state_ttl": request.state_ttl,
        }
    )
    try:
        # The options first, then the id at the front of the queue: a person waits for this; the calls it starts
        # queue like any job's. Left unclaimed, the options expire with the reply.
        client.execute(
            ("SET", REQUEST_KEY + job_id, options_json, "EX", REPLY_TTL),
            ("LPUSH", QUEUE_KEY, job_id),
            timeout=timeouts.pickup + 5,
        )
    except BaseException as exc:  # it may be on the queue: withdrawn first, or the command must not start it too
        withdrawn = request.withdraw()
        if not isinstance(exc, Exception):
            raise
        if withdrawn is None:
            raise _MaybeSent(request, exc) from exc
        if withdrawn:
            raise _NotSent from exc
        # A worker has it: its answer comes as for any request.
    return request


def _wait(request: _Request, timeouts: Timeouts) -> dict[str, Any] | None:
    """The worker's answer, or None when no worker took the request within the pickup time, or rq ended it without
    an answer (it is withdrawn then, and claimed for the command: nobody will start it)."""
    got = _reply(request, timeouts.pickup)
    if got is None:
        if request.give_up():
            return None
        got = _reply(request, timeouts.answer)  # a worker claimed it: its answer is coming
        if got is None:
            nothing = request.give_up()
            who = "No worker answered" if nothing else "A worker took this run_batch request and did not answer"
            raise HandOffLost(
                f"{who} within {timeouts.pickup + timeouts.answer:.0f} s (rq job {request.job_id}); "
                "see the workers' log. "
                + ("Nothing was started." if nothing else f"Its batch {request.batch_id} may be running.")
            )
    answer: dict[str, Any] = json.loads(got[1])
    return answer


def _reply(request: _Request, seconds: float) -> Any:
    """The answer within `seconds`, a second at a time; None at once when rq has ended the request's job without
    one (failed for good: a worker without this function, its retries spent)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        wait = max(0.01, min(1.0, left))  # never 0: that would be "block forever" to BLPOP
        got = request.client.execute(("BLPOP", request.reply_key, f"{wait:.3f}"), timeout=wait + 5)[0]
        if got is not None:
            return got
        if request.status() in (b"failed", b"stopped", b"canceled"):
            last = request.client.execute(("LPOP", request.reply_key))[0]  # pushed just before it ended
            return (request.reply_key, last) if last is not None else None
    return None


_outcome: HandedOff | None = None


def hand_off(argv: list[str]) -> None:
    """For a `run_batch ... --wait` command line with Redis: put the request on the queue and wait for a worker's
    answer, before Django is set up (manage.py); `take_outcome` gives it to the command. Raises only Ctrl-C: if
    anything but the worker's answer goes wrong, the command starts the batch itself, as without a hand-off."""
    global _outcome
    _outcome = None
    url = _redis_url()
    options = parse_handoff(argv) if url else None
    database = _command_database() if options is not None else None
    if options is None or url is None or database is None:
        return
    try:
        timeouts = handoff_timeouts()
    except ValueError:
        return  # the settings refuse the value, with the message
    try:
        request = _send(url, options, timeouts, database)
    except _MaybeSent as exc:
        _outcome = HandedOff(answer=None, error=_lost(exc.request, exc.cause, withdrawn=False, queueing=True))
        return
    except Exception:  # not queued (no Redis, a URL the hand-off does not read): the command starts the batch itself
        return
    try:
        _outcome = HandedOff(answer=_wait(request, timeouts))
    except HandOffLost as exc:
        _outcome = HandedOff(answer=None, error=str(exc))
    except BaseException as exc:  # Ctrl-C, lost Redis: withdraw it if a worker has not claimed it yet
        withdrawn = request.withdraw()
        if not isinstance(exc, Exception):
            if not withdrawn:  # Ctrl-C after a worker took it: the person should know a batch may be running
                sys.stderr.write(f"Interrupted; batch {request.batch_id} may have started (rq job {request.job_id}).\n")
            raise
        _outcome = HandedOff(answer=None, error=_lost(request, exc, withdrawn=bool(withdrawn)))
    finally:
        request.client.close()


def _lost(request: _Request, exc: Exception, *, withdrawn: bool, queueing: bool = False) -> str:
    what = "it was withdrawn: nothing was started" if withdrawn else f"its batch {request.batch_id} may have started"
    doing = "putting this run_batch request on the queue" if queueing else "waiting for a worker to answer"
    return f"Lost Redis while {doing} ({type(exc).__name__}: {exc}); {what} (rq job {request.job_id})."


def take_outcome() -> HandedOff | None:
    """What manage.py's hand-off of this process's command line came to, once; None if there was none."""
    global _outcome
    outcome, _outcome = _outcome, None
    return outcome


def report_unclaimed() -> None:
    """After the command: a batch a worker started that the command never took up (Django failed to set up, or
    its parser refused the line) is named on stderr, so that nobody starts it again unknowingly."""
    outcome = take_outcome()
    answer = outcome.answer if outcome is not None else None
    if answer is not None and answer.get("status") == "started":
        sys.stderr.write(
            f"Note: a worker started batch {answer.get('batch_id')} for this command line before it failed; "
            "it runs without this command (see the executions page).\n"
        )
