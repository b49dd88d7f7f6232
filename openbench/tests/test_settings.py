"""Settings come from the environment only; bad values fail fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "db = s.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'conn_max_age': db.get('CONN_MAX_AGE'),"
    " 'db_name': db['NAME'], 'cache': s.CACHES['default']['BACKEND'], 'use_rq': s.USE_RQ,"
    " 'debug': s.DEBUG, 'cors': s.CORS_ALLOWED_ORIGINS, 'openai_base_url': s.OPENAI_BASE_URL,"
    " 'concurrency': s.PROVIDER_CONCURRENCY['openai'], 'rpm': s.PROVIDER_RPM['anthropic']}))"
)
_PROJECT_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "CORS_ORIGINS",
    "OPENAI_BASE_URL",
    "LOG_LEVEL",
    "OPENAI_CONCURRENCY",
    "ANTHROPIC_RPM",
    "EVAL_CONCURRENCY",
    "ALLOWED_HOSTS",
    "SQLITE_PATH",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # the browser fixture sets it for its own tests; never a production setting
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in _PROJECT_VARS}
    clean.update(env, DJANGO_SETTINGS_MODULE="openbench.settings")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def _settings(**env: str) -> dict[str, object]:
    done = _run(PROBE, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_environment_means_sqlite_local_memory_cache_and_the_in_process_executor() -> None:
    values = _settings()
    assert values["engine"] == "django.db.backends.sqlite3"
    assert str(values["db_name"]).endswith("db.sqlite3")
    assert values["cache"].endswith("LocMemCache")
    assert values["use_rq"] is False and values["debug"] is True


def test_database_and_redis_urls_switch_to_postgresql_redis_and_rq() -> None:
    values = _settings(DATABASE_URL="postgresql://u:p@db.internal:5432/openbench", REDIS_URL="redis://cache:6379/1")
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["conn_max_age"] == 0  # pooled connections (DB_POOL, on by default) are not persistent
    assert values["cache"] == "django_redis.cache.RedisCache"
    assert values["use_rq"] is True


def test_the_seeds_sqlalchemy_style_database_url_is_accepted() -> None:
    values = _settings(DATABASE_URL="postgresql+asyncpg://u:p@db:5432/openbench")
    assert values["engine"] == "django.db.backends.postgresql"


def test_provider_base_urls_and_limits_come_from_the_environment() -> None:
    values = _settings(OPENAI_BASE_URL="http://127.0.0.1:9999/v1", OPENAI_CONCURRENCY="7", ANTHROPIC_RPM="120")
    assert values["openai_base_url"] == "http://127.0.0.1:9999/v1"
    assert (values["concurrency"], values["rpm"]) == (7, 120)


def test_cors_origins_accept_a_plain_or_a_json_style_list() -> None:
    plain = _settings(CORS_ORIGINS="https://a.example,https://b.example")
    seed_style = _settings(CORS_ORIGINS='["https://a.example"]')
    assert plain["cors"] == ["https://a.example", "https://b.example"]
    assert seed_style["cors"] == ["https://a.example"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "false"}, "SECRET_KEY must be set"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with"),
        ({"DATABASE_URL": "mongodb://x/y"}, "DATABASE_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be"),
        ({"EVAL_CONCURRENCY": "0"}, "EVAL_CONCURRENCY"),
    ],
)
def test_bad_values_fail_fast_with_a_clear_message(env: dict[str, str], message: str) -> None:
    done = _run("import django; django.setup()", **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr


def test_check_deploy_is_clean_in_production() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{key: value for key, value in os.environ.items() if key not in _PROJECT_VARS},
            "DEBUG": "false",
            "SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-3f9a8b7c6d5e",
            "ALLOWED_HOSTS": "openbench.example",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


BLAS_THREADS = (
    "import django; django.setup(); import numpy; from threadpoolctl import threadpool_info; "
    "print(max(pool['num_threads'] for pool in threadpool_info() if pool['user_api'] == 'blas'))"
)


def test_a_process_uses_one_blas_thread_unless_the_operator_says_otherwise() -> None:
    # OpenBLAS's pool, a spinning thread per core, made an arena fit cost 14 times the CPU on two cores.
    clean = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    clean["DJANGO_SETTINGS_MODULE"] = "openbench.settings"
    run = [sys.executable, "-c", BLAS_THREADS]
    done = subprocess.run(run, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "1"
    chosen = subprocess.run(
        run, cwd=ROOT, env={**clean, "OPENBLAS_NUM_THREADS": "2"}, capture_output=True, text=True, timeout=60
    )
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip().splitlines()[-1] == "2"
