"""What a process pays to start and to end: Django set up, the engine and the plain-HTTP adapters loaded
must not import the heavy libraries only some paths use (each is memory in every worker and time in every
command), and run_batch from the command line leaves its heap out of the interpreter's last collections."""

from __future__ import annotations

import gc
import json

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluations.management.commands.run_batch import Command as RunBatch
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
