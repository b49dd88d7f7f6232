"""Settings for the arena (SPEC §13): throttles, who may vote, and the ratings' bootstrap.
Star-imported by `openbench.settings`; every name here is a setting, helpers start with an underscore."""

from __future__ import annotations

import re as _re

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

_env = _environ.Env()

# DRF rates ("30/min", "500/day"), per signed-in user, for creating battles and for voting.
ARENA_BATTLE_RATE = _env.str("ARENA_BATTLE_RATE", default="60/min")
ARENA_VOTE_RATE = _env.str("ARENA_VOTE_RATE", default="20/min")
# A vote is accepted from an account at least this old, or from one with at least
# ARENA_MIN_APPROVED_TESTS approved tests (0: that way is closed); moderators always.
ARENA_MIN_ACCOUNT_AGE_HOURS = _env.float("ARENA_MIN_ACCOUNT_AGE_HOURS", default=24.0)
ARENA_MIN_APPROVED_TESTS = _env.int("ARENA_MIN_APPROVED_TESTS", default=1)
# Resamples of the votes for the ratings' 95% intervals, and the fixed seed that makes them repeatable.
ARENA_BOOTSTRAP_ROUNDS = _env.int("ARENA_BOOTSTRAP_ROUNDS", default=200)
ARENA_BOOTSTRAP_SEED = _env.int("ARENA_BOOTSTRAP_SEED", default=20_261_201)

for _name in ("ARENA_BATTLE_RATE", "ARENA_VOTE_RATE"):
    # DRF reads the number and the first letter of the period (s, m, h, d).
    if not _re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", globals()[_name]):
        raise _ImproperlyConfigured(f"{_name} must be a rate such as 20/min or 500/day.")
if ARENA_MIN_ACCOUNT_AGE_HOURS < 0 or ARENA_MIN_APPROVED_TESTS < 0 or not 20 <= ARENA_BOOTSTRAP_ROUNDS <= 10_000:
    raise _ImproperlyConfigured(
        "ARENA_MIN_ACCOUNT_AGE_HOURS and ARENA_MIN_APPROVED_TESTS must be >= 0, ARENA_BOOTSTRAP_ROUNDS 20-10000."
    )
# The ratings are refitted (a bootstrap of ARENA_BOOTSTRAP_ROUNDS fits) at most this often per source, by one
# process at a time; meanwhile readers get the previous answer (`stale: true`). A vote shows within this.
_refit = _env.str("ARENA_REFIT_SECONDS", default="10").strip()
if not (_refit.isascii() and _refit.isdigit() and int(_refit) <= 3600):
    raise _ImproperlyConfigured("ARENA_REFIT_SECONDS must be a whole number of seconds, 0-3600 (between refits).")
ARENA_REFIT_SECONDS = int(_refit)
