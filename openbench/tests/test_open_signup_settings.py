"""The open sign-up settings (SPEC §10): DB_STATEMENT_TIMEOUT_MS and MODEL_HOSTS_ALLOWED fail fast on bad
values, and the statement-timeout middleware is installed right after the request id."""

from __future__ import annotations

import json

import pytest

from openbench.tests.test_settings import _run

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'timeout': s.DB_STATEMENT_TIMEOUT_MS, 'hosts': s.MODEL_HOSTS_ALLOWED,"
    " 'middleware': s.MIDDLEWARE[:3]}))"
)


def _values(**env: str) -> dict[str, object]:
    done = _run(PROBE, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_defaults_limit_web_queries_to_5_seconds_and_add_no_model_host() -> None:
    values = _values()
    assert values["timeout"] == 5000 and values["hosts"] == []
    assert values["middleware"][1:] == [
        "openbench.middleware.RequestIdMiddleware",
        "openbench.middleware.StatementTimeoutMiddleware",
    ]


def test_values_come_from_the_environment() -> None:
    values = _values(DB_STATEMENT_TIMEOUT_MS="0", MODEL_HOSTS_ALLOWED="vllm.internal:8000,gpu-box")
    assert values["timeout"] == 0 and values["hosts"] == ["vllm.internal:8000", "gpu-box"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_STATEMENT_TIMEOUT_MS": "-1"}, "DB_STATEMENT_TIMEOUT_MS must be 0"),
        ({"MODEL_HOSTS_ALLOWED": "https://vllm.internal"}, "MODEL_HOSTS_ALLOWED: 'https://vllm.internal'"),
        ({"MODEL_HOSTS_ALLOWED": "gpu-box:http"}, "MODEL_HOSTS_ALLOWED: 'gpu-box:http' has an invalid port"),
    ],
)
def test_bad_values_fail_at_start(env: dict[str, str], message: str) -> None:
    done = _run("import django; django.setup()", **env)
    assert done.returncode != 0
    assert message in done.stderr
