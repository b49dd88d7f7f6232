"""Settings for tracing (SPEC §14, `openbench/tracing.py`). Star-imported by `openbench.settings`.

Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set; the OTLP exporter reads that variable (and the
other standard OTEL_EXPORTER_OTLP_* ones: headers, timeout, a traces-only endpoint) itself."""

from __future__ import annotations

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

_env = _environ.Env()

OTEL_EXPORTER_OTLP_ENDPOINT = _env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="").strip()
OTEL_SERVICE_NAME = _env.str("OTEL_SERVICE_NAME", default="openbench").strip() or "openbench"
if OTEL_EXPORTER_OTLP_ENDPOINT and not OTEL_EXPORTER_OTLP_ENDPOINT.startswith(("http://", "https://")):
    raise _ImproperlyConfigured(
        "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL (the OTLP/HTTP collector, e.g. http://collector:4318)."
    )
