"""Settings for an open sign-up (SPEC §10): log-in limits, password reset e-mail, headers, the web
requests' statement timeout and the hosts a model may name. Star-imported by `openbench.settings`;
every name here is a setting, helpers start with an underscore."""

from __future__ import annotations

from datetime import timedelta as _timedelta

import environ as _environ
from csp.constants import NONCE as _NONCE
from csp.constants import NONE as _NONE
from csp.constants import SELF as _SELF
from django.core.exceptions import ImproperlyConfigured as _ImproperlyConfigured

from providers.registry import parse_allowed_host as _parse_allowed_host

_env = _environ.Env()

# --- Log-in limits, password reset, e-mail (SPEC §10 "Log-in", "Tokens"; owned by accounts) ----
# django-axes counts failed log-ins of the API, the pages and the admin (all go through
# django.contrib.auth.authenticate). Two separate counters, not one per (account, address) pair:
# per account, so a guesser changing address still locks the account; per address, so one address
# spraying a password over many accounts is stopped too. See accounts/lockout.py and the README.
LOGIN_FAILURE_LIMIT = _env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW_SECONDS = _env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# An address is shared by everyone behind one NAT, so it gets a larger budget than one account.
LOGIN_ADDRESS_FAILURE_LIMIT = _env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=3 * LOGIN_FAILURE_LIMIT)
# How many proxies of ours append to X-Forwarded-For; 0 ignores the header (it is client-written).
TRUSTED_PROXY_COUNT = _env.int("TRUSTED_PROXY_COUNT", default=0)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_ADDRESS_FAILURE_LIMIT < 1 or LOGIN_FAILURE_WINDOW_SECONDS < 1:
    raise _ImproperlyConfigured(
        "LOGIN_FAILURE_LIMIT, LOGIN_ADDRESS_FAILURE_LIMIT and LOGIN_FAILURE_WINDOW_SECONDS must be at least 1."
    )
if TRUSTED_PROXY_COUNT < 0:
    raise _ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
# The database handler: shared by every web process and correct on SQLite and PostgreSQL alike
# (the cache handler would keep per-process counters on the local-memory cache).
AXES_HANDLER = "accounts.lockout.LoginFailureHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = _timedelta(seconds=LOGIN_FAILURE_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Attempts during a lock (even with the right password) do not extend it: the owner retrying
# would otherwise keep themselves locked out.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the counters: an attacker with an account of their own could otherwise
# clear their address's count between guesses at other accounts.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "accounts.addresses.client_ip"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# No row per successful log-in (it would grow without bound and keep addresses we do not need).
AXES_DISABLE_ACCESS_LOG = True

# E-mail (password reset): printed to the console unless EMAIL_URL names an SMTP server, e.g.
# smtp+tls://user:password@smtp.example.com:587 (django-environ's email URL).
EMAIL_URL = _env.str("EMAIL_URL", default="")
if EMAIL_URL:
    try:
        _email = _env.email_url_config(EMAIL_URL)
    except Exception as exc:  # django-environ raises several types on a malformed URL
        raise _ImproperlyConfigured(f"EMAIL_URL is not a valid e-mail URL: {exc}") from exc
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
    EMAIL_PORT = int(_email.get("EMAIL_PORT") or 25)
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_TIMEOUT = _env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = _env.str("DEFAULT_FROM_EMAIL", default="OpenBench <noreply@localhost>")
# Links in e-mails use this origin (e.g. https://bench.example.com) instead of the request's Host
# header; set it in production so a forged Host can never point a reset link elsewhere.
SITE_URL = _env.str("SITE_URL", default="").rstrip("/")
if SITE_URL and not SITE_URL.startswith(("http://", "https://")):
    raise _ImproperlyConfigured("SITE_URL must start with http:// or https://.")
PASSWORD_RESET_TIMEOUT = _env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
# --- end of log-in limits block --------------------------------------------------------------

# --- Headers, docs assets, metrics (SPEC §10 "Headers"; owned by the headers work) ----------
# Content-Security-Policy on every response (django-csp 4: one dict, not the old CSP_* settings).
# Scripts and styles come from our own origin; the few inline <script>/<style> blocks (the API docs'
# start-up code) carry the per-request nonce (`request.csp_nonce`). No 'unsafe-inline', no 'unsafe-eval',
# no CDN: Swagger UI and ReDoc are served by drf-spectacular-sidecar. `data:` images are Swagger UI's
# and the admin's icons; `blob:` workers are ReDoc's search index.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF, _NONCE],
        "style-src": [_SELF, _NONCE],
        "img-src": [_SELF, "data:"],
        "font-src": [_SELF],
        "connect-src": [_SELF],
        "worker-src": [_SELF, "blob:"],
        "object-src": [_NONE],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": [_NONE],
    },
}
# `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>` when this is set; open when empty.
METRICS_TOKEN = _env.str("METRICS_TOKEN", default="")
# --- end of headers block ------------------------------------------------------------------

# --- Safe for open sign-up: statement timeout, model hosts (SPEC §10 "Search", "Models") -----
# Every web request on PostgreSQL runs its queries under this limit (openbench.middleware.
# StatementTimeoutMiddleware sets it on the request's connection and resets it before the connection is
# returned); workers and management commands are not limited. 0 turns it off.
DB_STATEMENT_TIMEOUT_MS = _env.int("DB_STATEMENT_TIMEOUT_MS", default=5000)
if DB_STATEMENT_TIMEOUT_MS < 0:
    raise _ImproperlyConfigured("DB_STATEMENT_TIMEOUT_MS must be 0 (off) or a number of milliseconds.")
# Hosts a model's config.base_url may name, besides the hosts of the provider base URLs above (always
# allowed): "host" (any port) or "host:port", comma-separated. A provider's key goes only to its own
# base URL's host or to a host listed here (providers/registry.py).
MODEL_HOSTS_ALLOWED = _env.list("MODEL_HOSTS_ALLOWED", default=[])
for _allowed_host in MODEL_HOSTS_ALLOWED:
    try:
        _parse_allowed_host(_allowed_host)
    except ValueError as _exc:
        raise _ImproperlyConfigured(f"MODEL_HOSTS_ALLOWED: {_exc}") from None
# How many tests a contributor (not a moderator) may have awaiting moderation at once: a new sign-up must not
# flood the moderators' queue (or the database: each test and edit stores up to a 1 MB prompt). 0: no limit.
TESTS_PENDING_MAX_PER_USER = _env.int("TESTS_PENDING_MAX_PER_USER", default=100)
if TESTS_PENDING_MAX_PER_USER < 0:
    raise _ImproperlyConfigured("TESTS_PENDING_MAX_PER_USER must be 0 (no limit) or more.")
# --- end of open sign-up block ---------------------------------------------------------------
