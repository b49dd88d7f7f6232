"""ARENA_* settings come from the environment and fail at start on bad values."""

from __future__ import annotations

import json

import pytest

from openbench.tests.test_settings import _run

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.ARENA_VOTE_RATE, s.ARENA_BATTLE_RATE, s.ARENA_MIN_ACCOUNT_AGE_HOURS, "
    "s.ARENA_MIN_APPROVED_TESTS, s.ARENA_BOOTSTRAP_ROUNDS, s.ARENA_REFIT_SECONDS]))"
)


def test_values_come_from_the_environment() -> None:
    done = _run(
        PROBE,
        ARENA_VOTE_RATE="5/hour",
        ARENA_MIN_ACCOUNT_AGE_HOURS="0",
        ARENA_BOOTSTRAP_ROUNDS="50",
        ARENA_REFIT_SECONDS="0",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["5/hour", "60/min", 0.0, 1, 50, 0]


@pytest.mark.parametrize(
    "env",
    [
        {"ARENA_VOTE_RATE": "lots"},
        {"ARENA_BATTLE_RATE": "0/min"},
        {"ARENA_MIN_ACCOUNT_AGE_HOURS": "-1"},
        {"ARENA_BOOTSTRAP_ROUNDS": "5"},
        {"ARENA_REFIT_SECONDS": "-1"},
        {"ARENA_REFIT_SECONDS": "7200"},
        {"ARENA_REFIT_SECONDS": "soon"},
        {"ARENA_REFIT_SECONDS": "²"},  # a digit to str.isdigit, not to int()
    ],
)
def test_bad_values_fail_at_start(env: dict[str, str]) -> None:
    done = _run("import django; django.setup()", **env)
    assert done.returncode != 0
    assert next(iter(env)) in done.stderr
