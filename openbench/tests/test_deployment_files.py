"""SPEC §10 docker-compose: the stack refuses to start without SECRET_KEY, runs with DEBUG off, and the
image is built without secrets, local environments, history or databases."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _app_services() -> dict[str, dict]:  # type: ignore[type-arg]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: service for name, service in compose["services"].items() if service.get("build")}


def test_every_app_service_requires_a_secret_key_and_runs_without_debug() -> None:
    services = _app_services()
    assert set(services) == {"web", "worker", "scheduler"}
    for name, service in services.items():
        environment = service["environment"]
        # ${VAR:?message} makes `docker compose` stop with the message when VAR is unset or empty.
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment["SECRET_KEY"]), name
        assert environment["DEBUG"] == "false", name
        assert "SECRET_KEY" not in str(service.get("command", "")), name


def test_the_app_itself_refuses_debug_off_without_a_secret_key() -> None:
    # The second wall, should the compose file be run by something that ignores ${VAR:?}.
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    env.update({"DEBUG": "false", "DJANGO_SETTINGS_MODULE": "openbench.settings", "SECRET_KEY": ""})
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for these patterns: the last matching line wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(parts[i], pattern) for i, prefix in enumerate(prefixes)
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_environments_history_and_databases_out_of_the_image() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in [
        ".env",
        ".env.production",
        ".venv/bin/python",
        ".git/config",
        "db.sqlite3",
        "db.sqlite3-wal",
        "data/openbench.sqlite3",
        "openbench/__pycache__/settings.cpython-311.pyc",
        ".mypy_cache/x.json",
        ".pytest_cache/v/cache",
        "node_modules/x/index.js",
        "staticfiles/css/site.css",
    ]:
        assert _ignored(path, patterns), path
    for path in [
        "manage.py",
        "openbench/settings.py",
        "requirements.txt",
        "constraints.txt",
        ".env.example",
        "static/css/site.css",
    ]:
        assert not _ignored(path, patterns), path
