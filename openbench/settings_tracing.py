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
# Whether a request's own traceparent/baggage headers are continued. Off: anyone can send them, and a sampled
# flag would decide whether (and how often, against a sampling rate) we record and pay for their spans. On
# only behind a proxy that starts the traces (and drops the clients' headers).
OTEL_TRUST_INCOMING_CONTEXT = _env.bool("OTEL_TRUST_INCOMING_CONTEXT", default=False)
