"""What a process pays to start and to end: Django set up, the engine and the plain-HTTP adapters loaded
must not import the heavy libraries only some paths use (each is memory in every worker and time in every
command), and run_batch from the command line leaves its heap out of the interpreter's last collections."""

from __future__ import annotations

import gc
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluations.management.commands.run_batch import Command as RunBatch
from evaluations.models import Execution
from manage import _setup_uncollected
from openbench.tests.test_settings import _run
from providers.pooling import shared_ssl_context

_PROBE = """
import asyncio, json, sys
import django
django.setup()
from django.core.management import call_command
call_command("check")  # as `manage.py rqworker` does: every URLconf and view imported
import evaluations.jobs, evaluations.runner.run
from providers.registry import build_provider

async def clients():  # each plain-HTTP adapter builds its client (and the shared TLS context)
    for name in ("openai_compatible", "mes", "ollama"):
        provider = build_provider(name, options={"base_url": "http://127.0.0.1:1"})
        await provider._close_client(provider._new_client())

asyncio.run(clients())
heavy = ("scipy", "openai", "httpx", "pyarrow", "anthropic", "google.genai")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_setup_the_engine_and_the_plain_http_adapters_load_no_heavy_library() -> None:
    done = _run(_PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# What a command pays for before its first line: Django set up, the run_batch command and the service it
# calls imported. numpy (the leaderboard's statistics, the arena), jsonschema (validation and the scorers)
# and the apps' admin modules are for the paths that use them: analytics, scoring, the admin's pages.
_COMMAND_PROBE = """
import json, sys
import django
django.setup()
import evaluations.management.commands.run_batch, evaluations.services
from django.contrib import admin
lazy = ("numpy", "jsonschema", "leaderboard.services", "evaluations.scoring.structured", "arena.services")
print(json.dumps({"loaded": sorted(m for m in lazy if m in sys.modules), "admin": len(admin.site._registry)}))
"""


def test_setup_and_run_batch_import_no_numpy_jsonschema_scorers_or_admin_modules() -> None:
    done = _run(_COMMAND_PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"loaded": [], "admin": 0}


_ADMIN_PROBE = """
import json, sys
import django
django.setup()
from django.contrib import admin
from django.core import checks
from catalog.models import TestCase
before = admin.site.is_registered(TestCase)
if sys.argv[1] == "checks":
    checks.run_checks(tags=[checks.Tags.admin])
else:
    import openbench.urls
print(json.dumps([before, admin.site.is_registered(TestCase), admin.site.site_header]))
"""


@pytest.mark.parametrize("path", ["checks", "urls"])
def test_the_admin_modules_are_discovered_by_the_admin_checks_and_urls(path: str) -> None:
    done = _run(_ADMIN_PROBE.replace("sys.argv[1]", repr(path)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True, "OpenBench moderation"]


_WORKER_PROBE = """
import json, sys
import django
django.setup()
from evaluations.worker import preload
preload()
wanted = ("jsonschema", "numpy", "leaderboard.services", "monitoring.drift")
print(json.dumps(sorted(m for m in wanted if m in sys.modules)))
"""


def test_the_worker_imports_what_its_jobs_use_before_it_forks() -> None:
    done = _run(_WORKER_PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "jsonschema",
        "leaderboard.services",
        "monitoring.drift",
        "numpy",
    ]


def test_manage_py_sets_django_up_without_collections_then_freezes_its_heap() -> None:
    seen: list[bool] = []

    def failing_setup() -> None:
        raise RuntimeError("a broken app")

    gc.unfreeze()
    try:
        _setup_uncollected(lambda: seen.append(gc.isenabled()))()
        assert seen == [False]
        assert gc.isenabled() and gc.get_freeze_count() > 0
        gc.unfreeze()
        with pytest.raises(RuntimeError):  # a failing set-up still turns collections back on
            _setup_uncollected(failing_setup)()
        assert gc.isenabled()
    finally:
        gc.unfreeze()


_WSGI_PROBE = """
import gc, json
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
import openbench.wsgi
print(json.dumps([len(collections) < 10, gc.isenabled(), gc.get_freeze_count() > 0]))  # ~250 collected
"""


def test_the_wsgi_application_is_set_up_without_collections_then_frozen() -> None:
    done = _run(_WSGI_PROBE, DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="testserver")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, True]


@pytest.mark.django_db
def test_run_batch_waits_on_one_query_a_wake_up_and_prints_its_summary_in_one_write(
    django_assert_num_queries: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from catalog.tests.factories import TestCaseFactory
    from evaluations.tests.factories import ExecutionFactory

    batch = uuid.uuid4()
    for title in ("B test", "A test"):
        ExecutionFactory(
            test_case=TestCaseFactory(title=title),
            batch_id=batch,
            status=Execution.Status.COMPLETED,
            total_evaluations=2,
            progress=2,
            successful_evaluations=2,
            score_sum=1.5,
            scored_count=2,
        )
    ExecutionFactory(test_case=TestCaseFactory(title="Other batch"), batch_id=uuid.uuid4())  # still open
    out = io.StringIO()
    command = RunBatch(stdout=out)
    with django_assert_num_queries(1):
        command._wait(batch, 4, poll=5)  # all finished: one read, no wait
    with django_assert_num_queries(1):
        assert command._summary(batch) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["A", "B"]
    assert "completed" in lines[2] and "2/2" in lines[2] and "0.750" in lines[2]


def test_the_shared_tls_context_is_the_one_httpx_builds() -> None:
    ours, theirs = shared_ssl_context(), httpx.create_ssl_context()
    assert ours.verify_mode == theirs.verify_mode and ours.check_hostname == theirs.check_hostname
    assert ours.minimum_version == theirs.minimum_version and ours.options == theirs.options
    assert ours.get_ca_certs() == theirs.get_ca_certs() and len(ours.get_ca_certs()) > 10


@pytest.mark.django_db
def test_run_batch_from_the_command_line_freezes_the_heap_before_the_process_ends_call_command_does_not() -> None:
    gc.unfreeze()
    try:
        with pytest.raises(CommandError):
            call_command("run_batch", "--category", "nothing-here", "--yes")
        assert gc.get_freeze_count() == 0  # in-process callers (tests, other commands) keep collecting
        with pytest.raises(SystemExit) as exited:  # a CommandError from the command line: exit code 1
            RunBatch().run_from_argv(["manage.py", "run_batch", "--category", "nothing-here", "--yes"])
        assert exited.value.code == 1
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
