"""The hand-off's own Redis connection (evaluations.handoff_client) and the job class that turns a queued request
id into its job (evaluations.jobs.EvaluationJob): the command's side imports neither redis-py nor rq."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from evaluations import batch_handoff
from evaluations.handoff_client import HandoffConnection, HandoffRedisError
from evaluations.tests.test_queue import BASE_DIR, worker_env

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (real Redis)")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:6379/0?socket_timeout=1", "Only the database"),  # redis-py's options are not read here
        ("unix:///run/redis.sock?db=1&ssl_cert_reqs=none", "Only the database"),
        ("redis://127.0.0.1:6379/zero", "is a number, not 'zero'"),
        ("unix:///run/redis.sock?db=one", "is a number, not 'one'"),
        ("http://127.0.0.1:6379/0", "Not a Redis URL scheme"),
    ],
)
def test_a_url_the_handoff_does_not_read_is_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HandoffConnection(url, connect_timeout=1)


@pytest.fixture
def redis_keys() -> Iterator[str]:
    import django_rq

    prefix = f"openbench:test-handoff-client:{uuid.uuid4().hex}:"
    yield prefix
    connection = django_rq.get_connection("evaluations")
    for key in connection.scan_iter(prefix + "*"):
        connection.delete(key)


@needs_redis
def test_commands_are_answered_in_order_on_the_urls_database(redis_keys: str) -> None:
    import django_rq

    client = HandoffConnection(settings.REDIS_URL, connect_timeout=2)
    replies = client.execute(
        ("SET", redis_keys + "a", "1", "NX", "EX", 60),
        ("SET", redis_keys + "a", "2", "NX", "EX", 60),  # taken: nil
        ("LPUSH", redis_keys + "list", "x", "y"),
        ("HGET", redis_keys + "missing", "status"),
    )
    client.close()
    assert replies == [b"OK", None, 2, None]
    # The same database as the app's own client (the URL's /db was selected).
    assert django_rq.get_connection("evaluations").get(redis_keys + "a") == b"1"


@needs_redis
def test_an_error_reply_is_raised_in_redis_words(redis_keys: str) -> None:
    client = HandoffConnection(settings.REDIS_URL, connect_timeout=2)
    with pytest.raises(HandoffRedisError, match="wrong number of arguments"):
        client.execute(("LPUSH", redis_keys + "list"))
    assert client.execute(("PING",)) == [b"PONG"]


@needs_redis
def test_a_password_in_the_url_is_sent_before_any_command() -> None:
    # This Redis has no password: the AUTH the URL asks for is refused, so the hand-off does not go ahead.
    url = settings.REDIS_URL.replace("redis://", "redis://:not-the-password@", 1)
    with pytest.raises(HandoffRedisError, match="AUTH"):
        HandoffConnection(url, connect_timeout=2).execute(("PING",))


@needs_redis
def test_an_exchange_cut_short_leaves_no_late_reply_for_the_next_command(redis_keys: str) -> None:
    client = HandoffConnection(settings.REDIS_URL, connect_timeout=2)
    with pytest.raises(HandoffRedisError, match="timed out"):
        client.execute(("BLPOP", redis_keys + "empty", "1"), timeout=0.1)  # still blocking on the server
    # A new connection: the BLPOP's nil, a second later, cannot be read as this command's reply.
    assert client.execute(("PING",)) == [b"PONG"]
    client.close()


@needs_redis
def test_a_queued_request_id_becomes_its_job_when_a_worker_fetches_it(clean_queue: None) -> None:
    import django_rq
    from rq.exceptions import NoSuchJobError

    from evaluations.jobs import JOB_RETRIES, EvaluationJob

    queue = django_rq.get_queue("evaluations")
    assert queue.job_class is EvaluationJob  # every queue and worker of the app (settings.RQ)
    connection = queue.connection
    job_id = uuid.uuid4().hex
    request = {"options": {"yes": True}, "reply_to": batch_handoff.REPLY_KEY + job_id}
    connection.set(batch_handoff.REQUEST_KEY + job_id, json.dumps(request), ex=60)

    job = EvaluationJob.fetch(job_id, connection=connection)
    assert job.func_name == batch_handoff.REQUEST_FUNCTION and job.args == (request,)
    assert job.retries_left == JOB_RETRIES
    assert job.timeout == settings.RQ_QUEUES["evaluations"]["DEFAULT_TIMEOUT"]  # the worker's, not the command's
    assert job.result_ttl == batch_handoff.REPLY_TTL
    assert connection.get(batch_handoff.REQUEST_KEY + job_id) is None  # taken once
    again = EvaluationJob.fetch(job_id, connection=connection)  # now rq's own job, as saved
    assert again.args == (request,)
    connection.delete(f"rq:job:{job_id}")
    with pytest.raises(NoSuchJobError):  # neither a job nor a request: missing, as rq says
        EvaluationJob.fetch(job_id, connection=connection)


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_the_command_hands_off_without_importing_redis_py_or_rq(clean_queue: None) -> None:
    """What makes the hand-off quick: the request is queued (and, no worker taking it here, withdrawn) by a process
    that has imported neither redis-py nor rq, as manage.py does before Django."""
    import django_rq

    script = (
        "import sys, json\n"
        "from evaluations import batch_handoff\n"
        "batch_handoff.hand_off(['manage.py', 'run_batch', '--wait', '--yes'])\n"
        "print(json.dumps({'outcome': repr(batch_handoff.take_outcome()),"
        " 'imported': sorted({'redis', 'rq'} & set(sys.modules))}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=worker_env(RUN_BATCH_HANDOFF_PICKUP_SECONDS="0.3"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"outcome": "HandedOff(answer=None, error='')", "imported": []}
    connection = django_rq.get_connection("evaluations")
    assert connection.llen(batch_handoff.QUEUE_KEY) == 0  # withdrawn: no worker started later runs it
    assert not list(connection.scan_iter(batch_handoff.REQUEST_KEY + "*"))
