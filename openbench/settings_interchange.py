"""Settings for importing tests and exporting results over the API (SPEC §14). Star-imported by `openbench.settings`."""

from __future__ import annotations

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

_env = _environ.Env()

# POST /api/v1/tests/import: the largest file (bytes; a larger request is a 413) and the most records one
# file may hold (a 400 naming `file`, nothing created). The import_tests command has no limits.
IMPORT_MAX_BYTES = _env.int("IMPORT_MAX_BYTES", default=10 * 1024 * 1024)
IMPORT_MAX_RECORDS = _env.int("IMPORT_MAX_RECORDS", default=10_000)
if IMPORT_MAX_BYTES < 1 or IMPORT_MAX_RECORDS < 1:
    raise _ImproperlyConfigured("IMPORT_MAX_BYTES and IMPORT_MAX_RECORDS must be at least 1.")

# GET /api/v1/results/export: an anonymous caller's export stops after this many rows (a signed-in caller is
# known and throttled per account; an anonymous one could scan the whole public table per request); 0 = no limit.
RESULTS_EXPORT_ANONYMOUS_MAX_ROWS = _env.int("RESULTS_EXPORT_ANONYMOUS_MAX_ROWS", default=100_000)
if RESULTS_EXPORT_ANONYMOUS_MAX_ROWS < 0:
    raise _ImproperlyConfigured("RESULTS_EXPORT_ANONYMOUS_MAX_ROWS must be 0 (no limit) or more.")
