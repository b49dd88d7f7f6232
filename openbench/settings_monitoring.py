"""Settings for watching models (SPEC §12): drift thresholds and where alerts go.
Star-imported by `openbench.settings`; every name here is a setting, helpers start with an underscore."""

from __future__ import annotations

from urllib.parse import urlsplit as _urlsplit

import environ as _environ
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

_env = _environ.Env()

# A model drifts when its paired test (exact McNemar / Wilcoxon) gives p < DRIFT_ALPHA and its mean score
# moved by at least DRIFT_MIN_DELTA; or when its error rate rose by at least DRIFT_ERROR_RATE_RISE.
DRIFT_ALPHA = _env.float("DRIFT_ALPHA", default=0.01)
DRIFT_MIN_DELTA = _env.float("DRIFT_MIN_DELTA", default=0.05)
DRIFT_ERROR_RATE_RISE = _env.float("DRIFT_ERROR_RATE_RISE", default=0.2)
if not 0 < DRIFT_ALPHA < 1 or not 0 <= DRIFT_MIN_DELTA <= 1 or not 0 < DRIFT_ERROR_RATE_RISE <= 1:
    raise _ImproperlyConfigured(
        "DRIFT_ALPHA must be in (0, 1), DRIFT_MIN_DELTA in [0, 1] and DRIFT_ERROR_RATE_RISE in (0, 1]."
    )

# Each alert is POSTed here as JSON with a Slack-compatible `text` (empty: no webhook). Only http(s): the
# URL is the operator's, but a file:// or gopher:// URL is never what they meant.
ALERT_WEBHOOK_URL = _env.str("ALERT_WEBHOOK_URL", default="").strip()
if ALERT_WEBHOOK_URL:
    _parts = _urlsplit(ALERT_WEBHOOK_URL)
    if _parts.scheme not in ("http", "https") or not _parts.hostname:
        raise _ImproperlyConfigured("ALERT_WEBHOOK_URL must be an http:// or https:// URL.")
# Attempts per alert, the first wait between them (doubled each time) and each request's timeout, in seconds.
ALERT_WEBHOOK_ATTEMPTS = _env.int("ALERT_WEBHOOK_ATTEMPTS", default=5)
ALERT_WEBHOOK_BACKOFF_SECONDS = _env.float("ALERT_WEBHOOK_BACKOFF_SECONDS", default=2.0)
ALERT_WEBHOOK_TIMEOUT_SECONDS = _env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
if ALERT_WEBHOOK_ATTEMPTS < 1 or ALERT_WEBHOOK_BACKOFF_SECONDS < 0 or ALERT_WEBHOOK_TIMEOUT_SECONDS <= 0:
    raise _ImproperlyConfigured(
        "ALERT_WEBHOOK_ATTEMPTS must be at least 1, ALERT_WEBHOOK_BACKOFF_SECONDS >= 0, "
        "ALERT_WEBHOOK_TIMEOUT_SECONDS above 0."
    )
# Alerts are e-mailed to the active moderators and admins unless this is off.
ALERT_EMAIL_MODERATORS = _env.bool("ALERT_EMAIL_MODERATORS", default=True)
# How often `run_schedules` (without Redis) looks for due schedules, in seconds.
SCHEDULES_POLL_SECONDS = _env.float("SCHEDULES_POLL_SECONDS", default=30.0)
