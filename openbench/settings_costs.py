"""Settings for cost control (SPEC §11): the estimate before a run and the budgets that reserve it.
Star-imported by `openbench.settings`; every name here is a setting, helpers start with an underscore."""

from __future__ import annotations

from decimal import Decimal as _Decimal
from decimal import InvalidOperation as _InvalidOperation

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from providers.registry import PROVIDER_NAMES as _PROVIDER_NAMES

_env = _environ.Env()

# --- Estimate before running (SPEC §11; owned by the estimate work) ----------------------------------
# How long the estimate waits for vendors' token counters (Anthropic, Gemini) in all, in seconds; what is
# not counted by then is approximated (about four characters a token).
ESTIMATE_COUNT_TIMEOUT = _env.float("ESTIMATE_COUNT_TIMEOUT", default=5.0)
# `run_batch` asks `Proceed? [y/N]` when a batch's estimated cost (models and judge) is above this many
# USD, and refuses without a terminal, unless --yes.
_run_batch_confirm = _env.str("RUN_BATCH_CONFIRM_USD", default="1.00").strip()
try:
    RUN_BATCH_CONFIRM_USD = _Decimal(_run_batch_confirm)
except _InvalidOperation:
    raise _ImproperlyConfigured(f"RUN_BATCH_CONFIRM_USD must be an amount (got {_run_batch_confirm!r}).") from None
if not RUN_BATCH_CONFIRM_USD.is_finite() or RUN_BATCH_CONFIRM_USD < 0 or ESTIMATE_COUNT_TIMEOUT <= 0:
    raise _ImproperlyConfigured("RUN_BATCH_CONFIRM_USD must be an amount >= 0; ESTIMATE_COUNT_TIMEOUT above 0.")
# --- end of estimate block ------------------------------------------------------------------------------


# --- Budgets (SPEC §11): daily per user, monthly per provider across the platform ------------------
def _usd(name: str, default: str | None) -> _Decimal | None:
    raw = _env.str(name, default=default or "").strip()
    if not raw:
        return None
    try:
        value = _Decimal(raw)
    except _InvalidOperation:
        raise _ImproperlyConfigured(f"{name} must be an amount in USD, e.g. 1.00 (got {raw!r}).") from None
    if not value.is_finite() or value < 0:
        raise _ImproperlyConfigured(f"{name} must be a non-negative amount in USD.")
    return value


BUDGET_DAILY_USD_USER = _usd("BUDGET_DAILY_USD_USER", "1.00")
BUDGET_DAILY_USD_MODERATOR = _usd("BUDGET_DAILY_USD_MODERATOR", "20")
# Empty (the default) = no cap for that provider.
BUDGET_MONTHLY_USD = {name: _usd(f"BUDGET_MONTHLY_USD_{name.upper()}", None) for name in _PROVIDER_NAMES}
# A running execution whose actual cost passes its reserve times this is stopped.
BUDGET_OVERRUN_FACTOR = _env.float("BUDGET_OVERRUN_FACTOR", default=1.5)
if BUDGET_DAILY_USD_USER is None or BUDGET_DAILY_USD_MODERATOR is None or BUDGET_OVERRUN_FACTOR < 1:
    raise _ImproperlyConfigured("BUDGET_DAILY_USD_* must be set and BUDGET_OVERRUN_FACTOR must be at least 1.")
# --- end of budgets ------------------------------------------------------------------------------------
