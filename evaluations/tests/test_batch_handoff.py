"""`run_batch --wait` hands its request to a worker before Django is set up (evaluations.batch_handoff).

The parsing, the timeouts and the worker's answers are tested in both deployments; the hand-off itself needs
Redis and real rq workers (subprocesses against this test's PostgreSQL database), as CI's first pass has.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations import batch_handoff
from evaluations.batch_handoff import HandedOff, handoff_timeouts, parse_handoff
from evaluations.batch_selection import start_requested_batch, this_database
from evaluations.models import Execution
from evaluations.tests.conftest import drain_background_work
from evaluations.tests.test_queue import BASE_DIR, Workers, worker_env

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (real Redis and rq workers)")


# -- the command line ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("poll", ["0", "-1", "nan", "inf", "soon"])
def test_a_poll_that_is_not_seconds_above_zero_is_left_to_the_commands_parser(poll: str) -> None:
    assert parse_handoff(["manage.py", "run_batch", "--wait", "--poll", poll]) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "options"), [(("--wait", "--poll", "0"), {}), ((), {"wait": True, "poll": 0})], ids=["argv", "keywords"]
)
def test_run_batch_refuses_a_poll_of_zero_before_starting_anything(args: tuple[str, ...], options: dict) -> None:
    TestCaseFactory()
    with pytest.raises(CommandError, match=r"--poll.* must be a number of seconds above 0"):
        call_command("run_batch", *args, **options)
    assert not Execution.objects.exists()


def test_a_run_batch_that_waits_is_handed_off_with_its_options() -> None:
    argv = ["manage.py", "run_batch", "--category", "maths", "--models", "a,b", "c", "--wait", "--yes", "-v", "0"]
    assert parse_handoff(argv) == {
        "category": "maths",
        "tag": None,
        "tests": None,
        "models": ["a,b", "c"],
        "repeats": 1,
        "user": None,
        "yes": True,
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "run_batch", "--category", "maths"],  # not waiting: nothing to gain, the command returns
        ["manage.py", "run_batch", "--wait", "--estimate"],  # runs nothing
        ["manage.py", "run_batch", "--wait", "--settings", "other.settings"],  # other settings: left to Django
        ["manage.py", "run_batch", "--wait", "--pythonpath", "/tmp"],
        ["manage.py", "run_batch", "--wait", "--no-such-option"],  # Django's parser says what is wrong
        ["manage.py", "run_batch", "--wait", "--repeats", "many"],
        ["manage.py", "run_batch", "--wait", "--models", "a", "--all-models"],
        ["manage.py", "run_batch", "--wait", "--help"],
        ["manage.py", "run_batch", "--wait", "--skip-checks"],  # run_batch has no system checks: Django refuses it
        ["manage.py", "run_batch", "--wait", "--no-color", "--force-color"],  # Django refuses both
        ["manage.py", "run_batch", "--wait", "--v", "0"],  # ambiguous to Django (--version, --verbosity)
        ["manage.py", "run_batch", "--wait", "--p", "0.1"],  # ambiguous to Django (--pythonpath, --poll)
        ["manage.py", "run_batch", "--wait", "--s", "x"],  # --settings to Django
        ["manage.py", "migrate", "--wait"],
        ["manage.py"],
    ],
)
def test_other_command_lines_are_left_to_django(argv: list[str]) -> None:
    assert parse_handoff(argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "run_batch", "--wait"],
        ["manage.py", "run_batch", "--wait", "--yes", "--category", "maths", "--tag", "easy", "--repeats", "3"],
        ["manage.py", "run_batch", "--tests", "a,b", "c", "--models", "m1", "--wait", "--user", "x@example.com"],
        ["manage.py", "run_batch", "--all-models", "--wait", "--poll", "0.1", "-v", "2", "--traceback", "--no-color"],
        ["manage.py", "run_batch", "--wait", "--force-color", "--verbosity=0", "--repeats=2"],
    ],
)
def test_what_is_handed_off_is_what_djangos_own_parser_reads(argv: list[str]) -> None:
    """The same command line, read by the command's real parser (Django's options included), gives the same
    options: a line is handed off only if the command itself would have accepted it."""
    from evaluations.management.commands.run_batch import Command

    handed = parse_handoff(argv)
    assert handed is not None
    parsed = vars(Command().create_parser("manage.py", "run_batch").parse_args(argv[2:]))
    assert {name: parsed[name] for name in handed} == handed


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RUN_BATCH_HANDOFF_PICKUP_SECONDS": "soon"}, "must be numbers"),
        ({"RUN_BATCH_HANDOFF_PICKUP_SECONDS": "-1"}, "above 0"),
        ({"RUN_BATCH_HANDOFF_PICKUP_SECONDS": "0"}, "above 0"),  # BLPOP would block for ever
        ({"RUN_BATCH_HANDOFF_ANSWER_SECONDS": "0"}, "above 0"),
        ({"RUN_BATCH_HANDOFF_ANSWER_SECONDS": "nan"}, "above 0"),
        ({"RUN_BATCH_HANDOFF_PICKUP_SECONDS": "inf"}, "above 0"),
    ],
)
def test_bad_handoff_timeouts_are_refused_with_the_setting_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        handoff_timeouts(environ)


def test_the_handoff_timeouts_default_to_two_seconds_for_pickup() -> None:
    assert handoff_timeouts({}) == batch_handoff.Timeouts(pickup=2.0, answer=120.0)


@pytest.mark.parametrize(
    "environ",
    [
        {"REDIS_URL": ""},
        {"REDIS_URL": "http://127.0.0.1:6379/0"},
        {"RUN_BATCH_HANDOFF": "false"},
        {"READ_DOT_ENV": "true"},
        {"DJANGO_SETTINGS_MODULE": "other.settings"},
        {"DATABASE_URL": "sqlite:////tmp/openbench.sqlite3"},  # a worker could not be told apart: no hand-off
        {"DATABASE_URL": ""},
    ],
)
def test_no_handoff_without_redis_or_when_switched_off(monkeypatch: pytest.MonkeyPatch, environ: dict) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(batch_handoff, "_send", lambda *args: sent.append(args))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/9")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/openbench")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    assert sent == []
    assert batch_handoff.take_outcome() is None


def test_with_redis_and_postgresql_the_request_is_sent_with_the_databases_fingerprint(monkeypatch) -> None:
    sent: list[Any] = []

    def send(url: str, options: dict, timeouts: Any, database: str) -> None:
        sent.append((url, database))
        raise ConnectionError("the test stops here")

    monkeypatch.setattr(batch_handoff, "_send", send)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/9")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db.example:5433/openbench")
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    fingerprint = batch_handoff.database_fingerprint(host="db.example", port="5433", name="openbench")
    assert sent == [("redis://127.0.0.1:6379/9", fingerprint)]
    assert batch_handoff.take_outcome() is None  # could not send: the command starts it itself


# -- what a worker answers -------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"category": "nothing-here"}, "No approved tests match."),
        ({"models": ["no-such-model"]}, "No model with id or name 'no-such-model'."),
        ({"user": "nobody@example.com"}, "No user with email 'nobody@example.com'."),
        ({"repeats": 0}, "--repeats: "),
        ({"repeats": "x"}, "--repeats: "),
        ({"tests": ["not-a-uuid"]}, "Bad test id"),
    ],
)
def test_a_request_the_command_would_refuse_is_refused_with_its_words_and_starts_nothing(
    options: dict[str, Any], message: str
) -> None:
    TestCaseFactory()
    answer = start_requested_batch({"yes": True, **options}, batch_id=uuid.uuid4(), dispatch=False)
    assert answer.status == "refused"
    assert answer.message.startswith(message)
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_above_the_confirmation_threshold_the_worker_starts_nothing_and_the_command_asks(settings) -> None:
    settings.RUN_BATCH_CONFIRM_USD = "0"
    model = LLMModelFactory()
    TestCaseFactory()
    answer = start_requested_batch({"models": [model.name]}, batch_id=uuid.uuid4(), dispatch=False)
    assert answer.status == "confirm"
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_the_commands_confirmation_threshold_is_the_one_applied(settings) -> None:
    settings.RUN_BATCH_CONFIRM_USD = "1000"  # the worker's own
    model = LLMModelFactory()
    TestCaseFactory()
    options = {"models": [model.name]}
    asked = start_requested_batch(options, batch_id=uuid.uuid4(), dispatch=False, confirm_usd="0")
    assert asked.status == "confirm"
    bad = start_requested_batch(options, batch_id=uuid.uuid4(), dispatch=False, confirm_usd="lots")
    assert bad.status == "confirm"  # the command's own settings then say what is wrong with it
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_a_retried_request_finds_the_batch_it_started_and_starts_nothing_more() -> None:
    model = LLMModelFactory()
    TestCaseFactory.create_batch(2)
    batch_id = uuid.uuid4()
    first = start_requested_batch({"models": [model.name], "yes": True}, batch_id=batch_id, dispatch=False)
    again = start_requested_batch({"models": [model.name], "yes": True}, batch_id=batch_id, dispatch=False)
    assert first.status == again.status == "started"
    assert first.batch_id == again.batch_id == str(batch_id)
    assert sorted(first.execution_ids) == sorted(again.execution_ids)
    assert Execution.objects.count() == 2
    assert first.lines[-1] == f"Started 2 executions (2 evaluations), batch {batch_id}, by a worker."


@pytest.mark.django_db
def test_the_worker_runs_the_first_jobs_worth_of_a_big_batch_and_dispatches_the_rest(monkeypatch) -> None:
    from evaluations import services

    dispatched: list[list[str]] = []
    monkeypatch.setattr(services, "JOB_MAX_EVALUATIONS", 2)
    monkeypatch.setattr(services, "executions_dispatch", lambda **kwargs: dispatched.append(kwargs["execution_ids"]))
    model = LLMModelFactory()
    TestCaseFactory.create_batch(5)
    answer = start_requested_batch({"models": [model.name], "yes": True}, batch_id=uuid.uuid4(), dispatch=False)
    everything = {str(pk) for pk in Execution.objects.values_list("pk", flat=True)}
    assert len(answer.execution_ids) == 2 and len(dispatched) == 1 and len(dispatched[0]) == 3
    assert set(answer.execution_ids) | set(dispatched[0]) == everything
    assert not set(answer.execution_ids) & set(dispatched[0])


@pytest.mark.django_db
def test_under_the_threshold_the_answer_carries_the_estimate_line(settings) -> None:
    settings.RUN_BATCH_CONFIRM_USD = "100"
    model = LLMModelFactory()
    TestCaseFactory()
    answer = start_requested_batch({"models": [model.name]}, batch_id=uuid.uuid4(), dispatch=False)
    assert answer.status == "started"
    assert answer.lines[0].startswith("Estimated cost: $") and answer.lines[0].endswith("(1 evaluations).")


# -- the command, given the outcome of manage.py's hand-off ---------------------------------------------------------
@pytest.fixture
def outcome() -> Iterator[Any]:
    def give(handed: HandedOff) -> None:
        batch_handoff._outcome = handed

    yield give
    batch_handoff._outcome = None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("handed", "message"),
    [
        (HandedOff(answer={"status": "refused", "message": "No approved tests match."}), "No approved tests match."),
        (HandedOff(answer=None, error="A worker took this run_batch request"), "A worker took this run_batch request"),
    ],
)
def test_the_command_stops_with_the_workers_refusal_or_a_lost_request(outcome, handed, message) -> None:
    model = LLMModelFactory()
    TestCaseFactory()
    outcome(handed)
    with pytest.raises(CommandError, match=message):
        call_command("run_batch", models=[model.name], wait=True, yes=True, stdout=io.StringIO())
    assert not Execution.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("answer", [None, {"status": "confirm"}])
def test_when_no_worker_took_it_or_the_estimate_needs_asking_the_command_starts_it_itself(
    outcome, answer, clean_queue
) -> None:
    model = LLMModelFactory()
    TestCaseFactory()
    outcome(HandedOff(answer=answer))
    out = io.StringIO()
    call_command("run_batch", models=[model.name], yes=True, stdout=out)
    assert "Started 1 executions (1 evaluations)" in out.getvalue() and "by a worker" not in out.getvalue()
    assert Execution.objects.count() == 1
    drain_background_work()


@pytest.mark.django_db(transaction=True)
def test_the_command_waits_for_the_batch_the_worker_started_and_prints_its_summary(outcome, clean_queue) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    TestCaseFactory(title="Handed")
    started = start_requested_batch({"models": [model.name], "yes": True}, batch_id=uuid.uuid4(), dispatch=True)
    drain_background_work()
    outcome(HandedOff(answer=started.as_dict()))
    out = io.StringIO()
    call_command("run_batch", models=[model.name], wait=True, yes=True, poll=0.05, stdout=out, stderr=io.StringIO())
    assert f"batch {started.batch_id}, by a worker." in out.getvalue()
    assert "Handed" in out.getvalue() and "completed" in out.getvalue()
    assert Execution.objects.count() == 1  # the command started nothing of its own


# -- the hand-off itself, through Redis and real workers -----------------------------------------------------------
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_no_worker_takes_is_withdrawn_so_that_none_runs_it_later(monkeypatch, clean_queue) -> None:
    import django_rq

    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("DATABASE_URL", worker_env()["DATABASE_URL"])
    monkeypatch.setenv("RUN_BATCH_HANDOFF_PICKUP_SECONDS", "0.2")
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    handed = batch_handoff.take_outcome()
    assert handed == HandedOff(answer=None)
    queue = django_rq.get_queue("evaluations")
    assert queue.count == 0 and not queue.job_ids


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_answer_names_its_reply_list_only(clean_queue) -> None:
    import django_rq

    from evaluations.jobs import answer_batch_request

    connection = django_rq.get_connection("evaluations")
    with pytest.raises(ValueError, match="must name its reply list"):
        answer_batch_request({"reply_to": "rq:queue:evaluations", "options": {}}, connection, dispatch=True)
    assert connection.llen("rq:queue:evaluations") == 0


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_cannot_start_the_batch_still_answers(monkeypatch, clean_queue) -> None:
    import django_rq

    from evaluations import batch_selection
    from evaluations.jobs import answer_batch_request

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(batch_selection, "start_requested_batch", broken)
    connection = django_rq.get_connection("evaluations")
    reply = batch_handoff.REPLY_KEY + "test-broken"
    answer = answer_batch_request(
        {"reply_to": reply, "options": {}, "batch_id": str(uuid.uuid4()), "database": this_database()},
        connection,
        dispatch=True,
    )
    assert answer.status == "refused" and "see its log" in answer.message
    assert json.loads(connection.lpop(reply))["status"] == "refused"


def _command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py run_batch ...` as a person runs it, against this test's database and Redis."""
    return subprocess.run(
        [sys.executable, "manage.py", "run_batch", *args],
        cwd=BASE_DIR,
        env=worker_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def pool(tmp_path: Path, clean_queue: None) -> Iterator[Workers]:
    workers = Workers(tmp_path)
    yield workers
    workers.stop_all()


def _listening(pool: Workers) -> None:
    """Start a worker and wait until it listens: a command that starts before it would rightly withdraw its
    request after the pickup time and run the batch itself (a worker's start takes 1-3 s on a busy machine)."""
    import django_rq
    from rq import Worker

    process = pool.start(burst=False)
    queue = django_rq.get_queue("evaluations")
    deadline = time.monotonic() + 60
    # This worker: a killed one stays registered for minutes.
    while not any(worker.pid == process.pid for worker in Worker.all(queue=queue)):
        assert time.monotonic() < deadline, pool.logs()
        time.sleep(0.05)


@needs_redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_batch_wait_hands_off_to_an_idle_worker_that_starts_and_runs_the_batch(pool) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 5})
    TestCaseFactory.create_batch(3, category="handoff")
    _listening(pool)
    done = _command("--category", "handoff", "--models", model.name, "--wait", "--yes")
    assert done.returncode == 0, (done.stdout, done.stderr, pool.logs())
    assert "Started 3 executions (3 evaluations), batch " in done.stdout and ", by a worker." in done.stdout
    assert Execution.objects.filter(status=Execution.Status.COMPLETED).count() == 3
    assert len({execution.batch_id for execution in Execution.objects.all()}) == 1


@needs_redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_refusal_comes_back_from_the_worker_with_the_commands_words_and_exit_code(pool) -> None:
    pool.start(burst=False)
    done = _command("--category", "nothing-here", "--wait", "--yes")
    assert done.returncode == 1
    assert "No approved tests match." in done.stderr
    assert not Execution.objects.exists()


@needs_redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_busy_worker_answers_a_request_from_its_running_loop(pool) -> None:
    """One worker, busy with a slow run: the request is served by its running job's intake, within the pickup
    time, and the batch's own job is taken in beside the slow one (nothing waits for the slow run to end)."""
    slow = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 60000})  # still running when the test ends
    quick = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 5})
    from evaluations.services import executions_start_batch

    busy = executions_start_batch(
        test_cases=[TestCaseFactory(category="slow", timeout_seconds=120)], models=[slow], started_by=None
    )
    TestCaseFactory.create_batch(2, category="quick")
    pool.start(burst=False)
    deadline = time.monotonic() + 30
    while Execution.objects.get(pk=busy[0].pk).status != Execution.Status.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    done = _command(
        "--category", "quick", "--models", quick.name, "--wait", "--yes", RUN_BATCH_HANDOFF_PICKUP_SECONDS="5"
    )
    assert done.returncode == 0, (done.stdout, done.stderr, pool.logs())
    assert ", by a worker." in done.stdout
    assert Execution.objects.get(pk=busy[0].pk).status == Execution.Status.RUNNING  # it did not wait for it
    assert Execution.objects.filter(test_case__category="quick", status=Execution.Status.COMPLETED).count() == 2


@needs_redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_request_the_worker_fails_for_good_is_started_by_the_command_at_once(pool, monkeypatch) -> None:
    """A worker that cannot answer (here: the request names a reply list the worker refuses to write to, as a
    worker of an older release without the function would fail it) fails the job, retries spent, before it
    claims the request: the command sees it within a second, claims the request and starts the batch itself."""
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("DATABASE_URL", worker_env()["DATABASE_URL"])
    monkeypatch.setenv("RUN_BATCH_HANDOFF_PICKUP_SECONDS", "20")
    monkeypatch.setattr(batch_handoff, "REPLY_KEY", "openbench:not-a-reply-list:")
    pool.start(burst=False)
    started = time.monotonic()
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    handed = batch_handoff.take_outcome()
    assert handed == HandedOff(answer=None), pool.logs()
    assert time.monotonic() - started < 15
    assert not Execution.objects.exists()


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_of_another_database_starts_nothing_and_says_so(clean_queue) -> None:
    import django_rq

    from evaluations.jobs import answer_batch_request

    model = LLMModelFactory()
    TestCaseFactory()
    connection = django_rq.get_connection("evaluations")
    reply = batch_handoff.REPLY_KEY + "test-elsewhere"
    request = {"reply_to": reply, "options": {"models": [model.name], "yes": True}, "batch_id": str(uuid.uuid4())}
    answer = answer_batch_request({**request, "database": "another"}, connection, dispatch=False)
    assert answer.status == "elsewhere"
    assert json.loads(connection.lpop(reply))["status"] == "elsewhere"
    assert not Execution.objects.exists()


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_command_gave_up_first_is_dropped_and_starts_nothing(clean_queue) -> None:
    """The handshake: the command claims the request's state ("gone") before a worker does ("taken")."""
    import django_rq

    from evaluations.jobs import answer_batch_request

    model = LLMModelFactory()
    TestCaseFactory()
    connection = django_rq.get_connection("evaluations")
    reply = batch_handoff.REPLY_KEY + "test-gone"
    connection.set(reply + batch_handoff.STATE_SUFFIX, "gone")
    request = {
        "reply_to": reply,
        "options": {"models": [model.name], "yes": True},
        "batch_id": str(uuid.uuid4()),
        "database": this_database(),
    }
    assert answer_batch_request(request, connection, dispatch=False).status == "abandoned"
    assert connection.llen(reply) == 0 and not Execution.objects.exists()
    # A retry of a request this worker claimed goes on (and finds nothing new to create the second time).
    connection.set(reply + batch_handoff.STATE_SUFFIX, "taken")
    assert answer_batch_request(request, connection, dispatch=False).status == "started"
    assert answer_batch_request(request, connection, dispatch=False).status == "started"
    assert Execution.objects.count() == 1


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_while_waiting_withdraws_the_request(monkeypatch, clean_queue) -> None:
    import django_rq

    def interrupted(request: Any, timeouts: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_handoff, "_wait", interrupted)
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("DATABASE_URL", worker_env()["DATABASE_URL"])
    with pytest.raises(KeyboardInterrupt):
        batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    queue = django_rq.get_queue("evaluations")
    assert queue.count == 0  # no worker started later will find it


@pytest.mark.django_db
def test_an_answer_about_a_batch_this_database_does_not_have_is_an_error(outcome) -> None:
    model = LLMModelFactory()
    TestCaseFactory()
    missing = str(uuid.uuid4())
    outcome(HandedOff(answer={"status": "started", "lines": ["Started..."], "batch_id": missing, "total": 1}))
    with pytest.raises(CommandError, match="this database has no such batch"):
        call_command("run_batch", models=[model.name], wait=True, yes=True, stdout=io.StringIO())


@pytest.mark.django_db
def test_a_retry_delivered_outside_a_worker_dispatches_what_is_left_of_its_batch(monkeypatch) -> None:
    from evaluations import services

    dispatched: list[str] = []
    monkeypatch.setattr(services, "JOB_MAX_EVALUATIONS", 2)
    monkeypatch.setattr(
        services, "executions_dispatch", lambda **kwargs: dispatched.extend(map(str, kwargs["execution_ids"]))
    )
    import evaluations.batch_selection as selection

    monkeypatch.setattr(selection, "executions_dispatch", services.executions_dispatch)
    model = LLMModelFactory()
    TestCaseFactory.create_batch(5)
    batch_id = uuid.uuid4()
    first = start_requested_batch({"models": [model.name], "yes": True}, batch_id=batch_id, dispatch=False)
    assert len(first.execution_ids) == 2 and len(dispatched) == 3
    retry = start_requested_batch({"models": [model.name], "yes": True}, batch_id=batch_id, dispatch=True)
    assert retry.status == "started"
    assert set(first.execution_ids) <= set(dispatched)  # nothing of the batch is left without a job


def test_a_batch_a_worker_started_for_a_command_that_then_failed_is_named(capsys) -> None:
    batch_handoff._outcome = HandedOff(answer={"status": "started", "batch_id": "b-1"})
    batch_handoff.report_unclaimed()
    assert "a worker started batch b-1" in capsys.readouterr().err
    batch_handoff.report_unclaimed()  # once
    assert capsys.readouterr().err == ""


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_taken_after_its_command_stopped_waiting_starts_nothing_nor_do_its_retries(clean_queue) -> None:
    """A delivery delayed past every timeout (say, a job rq re-queues from its intermediate list ten minutes later,
    when the command's own claim has expired): the request's deadline, on Redis's clock, stops it."""
    import django_rq

    from evaluations.jobs import answer_batch_request

    model = LLMModelFactory()
    TestCaseFactory()
    connection = django_rq.get_connection("evaluations")
    now = connection.time()[0]
    request = {"options": {"models": [model.name], "yes": True}, "database": this_database()}
    late = {**request, "reply_to": batch_handoff.REPLY_KEY + "test-late", "batch_id": str(uuid.uuid4())}
    for _ in range(2):  # the first delivery, then a retry of it
        assert answer_batch_request({**late, "expires_at": now - 1}, connection, dispatch=False).status == "abandoned"
    assert connection.get(late["reply_to"] + batch_handoff.STATE_SUFFIX) == b"gone"
    garbled = {**request, "reply_to": batch_handoff.REPLY_KEY + "test-garbled", "batch_id": str(uuid.uuid4())}
    assert answer_batch_request({**garbled, "expires_at": "soon"}, connection, dispatch=False).status == "abandoned"
    assert not Execution.objects.exists()
    # Late, and the database fails while the worker checks for its batch: nothing is claimed, so rq's retry of the
    # job finds the request late again instead of "taken" by the failed attempt.
    broken = {**request, "reply_to": batch_handoff.REPLY_KEY + "test-broken", "batch_id": str(uuid.uuid4())}
    from django.db import OperationalError
    from django.db.models import QuerySet

    def lost(self: QuerySet) -> bool:
        raise OperationalError("connection lost")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(QuerySet, "exists", lost)
        with pytest.raises(OperationalError):
            answer_batch_request({**broken, "expires_at": now - 1}, connection, dispatch=False)
    assert connection.get(broken["reply_to"] + batch_handoff.STATE_SUFFIX) is None
    assert answer_batch_request({**broken, "expires_at": now - 1}, connection, dispatch=False).status == "abandoned"
    on_time = {**request, "reply_to": batch_handoff.REPLY_KEY + "test-on-time", "batch_id": str(uuid.uuid4())}
    assert answer_batch_request({**on_time, "expires_at": now + 60}, connection, dispatch=False).status == "started"
    assert Execution.objects.count() == 1
    # Its retry after the deadline, once the worker's claim has expired (a job that ran for over ten minutes):
    # the batch exists, so it was claimed on time, and the retry runs what is left of it.
    connection.delete(on_time["reply_to"] + batch_handoff.STATE_SUFFIX)
    retry = {**on_time, "expires_at": now - 1}
    assert answer_batch_request(retry, connection, dispatch=False).status == "started"
    assert Execution.objects.count() == 1
    for key in ("test-late", "test-garbled", "test-broken", "test-on-time"):
        connection.delete(batch_handoff.REPLY_KEY + key, batch_handoff.REPLY_KEY + key + batch_handoff.STATE_SUFFIX)


def _handoff_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("DATABASE_URL", worker_env()["DATABASE_URL"])


def _write_lands_but_its_reply_is_lost(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Queueing the request reaches Redis, and then its reply times out; returns the ids so queued."""
    from evaluations.handoff_client import HandoffConnection, HandoffRedisError

    execute = HandoffConnection.execute
    queued: list[str] = []

    def lossy(self: HandoffConnection, *commands: Any, timeout: float = 5.0) -> list[Any]:
        replies = execute(self, *commands, timeout=timeout)
        if commands[-1][0] == "LPUSH":
            queued.append(commands[-1][2])
            self.close()
            raise HandoffRedisError("TimeoutError: timed out")
        return replies

    monkeypatch.setattr(HandoffConnection, "execute", lossy)
    return queued


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_queueing_broke_off_is_withdrawn_before_the_command_starts_it(monkeypatch, clean_queue) -> None:
    import django_rq

    _handoff_env(monkeypatch)
    queued = _write_lands_but_its_reply_is_lost(monkeypatch)
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    assert len(queued) == 1
    assert batch_handoff.take_outcome() is None  # the command starts the batch itself: no worker will
    connection = django_rq.get_connection("evaluations")
    assert connection.llen(batch_handoff.QUEUE_KEY) == 0
    assert not list(connection.scan_iter(batch_handoff.REQUEST_KEY + "*"))


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_queueing_broke_off_after_a_worker_took_it_is_waited_for(monkeypatch, clean_queue) -> None:
    import django_rq

    _handoff_env(monkeypatch)
    monkeypatch.setenv("RUN_BATCH_HANDOFF_PICKUP_SECONDS", "0.2")
    monkeypatch.setenv("RUN_BATCH_HANDOFF_ANSWER_SECONDS", "0.2")
    queued = _write_lands_but_its_reply_is_lost(monkeypatch)
    connection = django_rq.get_connection("evaluations")
    give_up = batch_handoff._Request.give_up

    def taken_first(self: batch_handoff._Request) -> bool:
        connection.set(self.reply_key + batch_handoff.STATE_SUFFIX, "taken", ex=60)  # a worker was quicker
        return give_up(self)

    monkeypatch.setattr(batch_handoff._Request, "give_up", taken_first)
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    outcome = batch_handoff.take_outcome()
    # Not started by the command too: it waited for the worker's answer (none comes here) and says so.
    assert len(queued) == 1 and outcome is not None and outcome.answer is None
    assert "A worker took this run_batch request and did not answer" in outcome.error
    assert "may be running" in outcome.error
    # The worker's claim stands, so its job stays queued (rq's retry of it, say): only a command's claim removes it.
    assert queued[0].encode() in connection.lrange(batch_handoff.QUEUE_KEY, 0, -1)


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_request_whose_queueing_broke_off_with_redis_gone_is_not_started_by_the_command(
    monkeypatch, clean_queue
) -> None:
    from evaluations.handoff_client import HandoffRedisError

    _handoff_env(monkeypatch)
    _write_lands_but_its_reply_is_lost(monkeypatch)

    def unreachable(self: batch_handoff._Request) -> bool:
        raise HandoffRedisError("ConnectionRefusedError: refused")

    monkeypatch.setattr(batch_handoff._Request, "give_up", unreachable)
    batch_handoff.hand_off(["manage.py", "run_batch", "--wait", "--yes"])
    outcome = batch_handoff.take_outcome()
    assert outcome is not None and outcome.answer is None
    assert outcome.error.startswith("Lost Redis while putting this run_batch request on the queue (")
    assert "may have started" in outcome.error


@needs_redis
def test_a_command_finds_a_request_a_worker_dropped_as_late_withdrawn(clean_queue) -> None:
    import django_rq

    from evaluations.handoff_client import HandoffConnection

    client = HandoffConnection(settings.REDIS_URL, connect_timeout=2)
    request = batch_handoff._Request(client, "no-such-job", batch_handoff.REPLY_KEY + "dropped", "b", state_ttl=60)
    connection = django_rq.get_connection("evaluations")
    connection.set(request.reply_key + batch_handoff.STATE_SUFFIX, "gone", ex=60)  # a worker found it past its deadline
    assert request.give_up()  # nothing will start it: the command may start the batch itself
    connection.delete(request.reply_key + batch_handoff.STATE_SUFFIX)
    client.close()


@needs_redis
def test_a_wait_that_ends_within_a_millisecond_does_not_block(clean_queue) -> None:
    from evaluations.handoff_client import HandoffConnection

    client = HandoffConnection(settings.REDIS_URL, connect_timeout=2)
    request = batch_handoff._Request(client, "no-such-job", batch_handoff.REPLY_KEY + "nobody", "b", state_ttl=60)
    started = time.monotonic()
    assert batch_handoff._reply(request, 0.0004) is None  # BLPOP with a timeout of 0 would block until the socket's
    assert time.monotonic() - started < 1
    client.close()
