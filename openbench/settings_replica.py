"""Settings for the read replica (SPEC §14, `openbench/dbrouter.py`); `openbench.settings` calls `replica_databases`
with the primary's configuration once it has built it.

DATABASE_REPLICA_URL (postgresql://…) adds a `replica` database with the primary's treatment (connection pool
and its sizes, health checks), the routing of analytics reads to it, and its middleware. Without it nothing
changes."""

from __future__ import annotations

from typing import Any as _Any

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from openbench.settings_signup import DB_STATEMENT_TIMEOUT_MS as _STATEMENT_TIMEOUT_MS

_env = _environ.Env()

DATABASE_REPLICA_URL = _env.str("DATABASE_REPLICA_URL", default="").strip()


def replica_databases(default: dict[str, _Any]) -> dict[str, dict[str, _Any]]:
    """`{"replica": …}` when DATABASE_REPLICA_URL is set (else `{}`): its own address, the primary's options."""
    if not DATABASE_REPLICA_URL:
        return {}
    if not default["ENGINE"].endswith("postgresql"):
        raise _ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL primary: set DATABASE_URL too.")
    if not DATABASE_REPLICA_URL.startswith(("postgres://", "postgresql://")):
        raise _ImproperlyConfigured("DATABASE_REPLICA_URL must be a postgresql://user:pass@host:5432/db URL.")
    try:
        replica: dict[str, _Any] = _env.db_url_config(DATABASE_REPLICA_URL)
    except Exception as exc:  # django-environ raises several types on a malformed URL
        raise _ImproperlyConfigured(f"DATABASE_REPLICA_URL is not a valid database URL: {exc}") from exc
    replica["CONN_MAX_AGE"] = default["CONN_MAX_AGE"]
    replica["CONN_HEALTH_CHECKS"] = default["CONN_HEALTH_CHECKS"]
    options = {**default.get("OPTIONS", {}), **replica.get("OPTIONS", {})}
    if "pool" in options:
        options["pool"] = dict(options["pool"])  # a pool of its own, of the same size
    if _STATEMENT_TIMEOUT_MS:
        # Only web requests read the replica (jobs and commands never do), so the web requests' limit can be
        # the connections' own: no SET/RESET per request as on the primary.
        limit = f"-c statement_timeout={int(_STATEMENT_TIMEOUT_MS)}"
        options["options"] = f"{options['options']} {limit}" if options.get("options") else limit
    replica["OPTIONS"] = options
    # A test run with the variable set reads the test database through the replica's own connection.
    replica["TEST"] = {"MIRROR": "default"}
    return {"replica": replica}
