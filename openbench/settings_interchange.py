"""Settings for importing tests over the API (SPEC §14). Star-imported by `openbench.settings`."""

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
