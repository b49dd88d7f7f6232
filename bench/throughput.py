"""Throughput of the evaluation engine, through ONE rq worker against a fake OpenAI-compatible server with a
fixed latency, on real PostgreSQL and Redis.

    DATABASE_URL=postgresql://... REDIS_URL=redis://... python bench/throughput.py [--scenario NAME] \
        [--evaluations 2000] [--latency-ms 100] [--concurrency 50] [--models 40] [--repeat 3]
        [--worker-class rq.SimpleWorker] [--web gunicorn|in-process]

Scenarios (`SCENARIOS` in bench/scenarios.py, a registry: add one there with @scenario("name"); the fake
server, the worker's measurements and the bench's tests are in bench/harness.py):

* throughput (default): a round is one `executions_start_batch` over ceil(N / models) new approved tests,
  i.e. what `manage.py run_batch` does, timed until every execution has finished. Prints wall time, the
  ideal time N x latency / C, the efficiency (ideal / wall), evaluations per second, the worker's CPU and
  peak RSS.
* many-runs: 100 runs of 1 test x 5 models POSTed at once to /api/v1/tests/{id}/run by 100 users
  (API keys), timed from the first POST until every execution has finished. By default (--web gunicorn)
  100 HTTP clients POST to gunicorn serving the app as the Dockerfile does (3 sync workers,
  --web-workers); --web in-process sends them through Django's test client in the bench's own process
  from 20 threads (one GIL serves all 100 POSTs: the figure sessions 5-7 reported).
* api-run: one user POSTs a run of 1 test x 5 models to gunicorn while the worker is idle: POST to 202,
  202 to the first provider call, last answer to `completed` in the database, per round.
* batch: `manage.py run_batch --category ... --all-models --wait` as a subprocess over 500 tests x 1
  model and 50 tests x 40 models, timed from the command's start to its exit (the bench's models are
  the only active ones meanwhile; other active models are switched off and back on).
* adaptive: the fake server takes 20 calls at once and refuses more (429, Retry-After, x-ratelimit
  headers), the engine is configured for C: `run_batch --models <20 models> --wait` over 50 tests, timed
  from the command's start to its exit, with the share of requests refused (target <= 5 %, wall <=
  1.4 x N x latency / 20).

Rounds run against the same worker; each one is printed and the median and spread are reported (one
round on a shared machine can be off by a few points). Everything it creates is deleted at the end
(unless --keep).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))  # its siblings, also under `python -m bench.throughput`

from harness import Context, start_fake_server  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="throughput")
    parser.add_argument("--evaluations", "-n", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--models", type=int, default=40, help="Models per test (evaluations = tests x models).")
    parser.add_argument("--worker-class", default="", help="rq worker class (default: rq's forking Worker).")
    parser.add_argument(
        "--provider",
        choices=["openai_compatible", "openai"],
        default="openai_compatible",
        help="Adapter the models use: plain JSON over aiohttp, or the official openai SDK (same fake server).",
    )
    parser.add_argument(
        "--repeat", "-r", type=int, default=3, help="Rounds against the same worker; the median is reported."
    )
    parser.add_argument(
        "--web",
        choices=["gunicorn", "in-process"],
        default="gunicorn",
        help="many-runs: POST over HTTP to gunicorn (as deployed), or through the test client in this process.",
    )
    parser.add_argument("--web-workers", type=int, default=3, help="many-runs: gunicorn workers (the Dockerfile's 3).")
    parser.add_argument("--keep", action="store_true", help="Keep the tests, models and results it created.")
    parser.add_argument(
        "--no-baseline", action="store_true", help="Skip the adapter-only run (same calls, no engine, no database)."
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark measures the real deployment.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")
    os.environ["EVAL_CACHE"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As deployed: DEBUG off (no query log, production settings), which needs a real secret key.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,testserver")
    if args.provider == "openai":
        # The openai adapter wants a key; this one only ever reaches the fake server on 127.0.0.1.
        os.environ["OPENAI_API_KEY"] = "bench-fake-key"
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import User
    from catalog.models import LLMModel, TestCase

    call_command("migrate", verbosity=0)
    import django_rq

    queue = django_rq.get_queue("evaluations")
    queue.empty()

    server, base_url = start_fake_server(args.latency_ms)
    run = uuid.uuid4().hex[:8]
    worker_env = {
        **os.environ,
        "EVAL_CONCURRENCY": str(args.concurrency),
        f"{args.provider.upper()}_CONCURRENCY": str(args.concurrency),
        "EVAL_CACHE": "false",
        "LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    }
    author = User.objects.create_user(f"bench-{run}@example.com", password=None)
    models = [
        LLMModel.objects.create(
            name=f"bench-{run}-{i}",
            display_name=f"Bench {run} {i}",
            provider=args.provider,
            provider_model_id=f"fake-{i}",
            config={"base_url": base_url},
            input_price_per_million=1,
            output_price_per_million=2,
        )
        for i in range(args.models)
    ]
    # The project's bytecode, compiled once: with PYTHONDONTWRITEBYTECODE set (the Dockerfile sets it) the
    # worker and every run_batch would otherwise compile ~100 modules from source at each start (~0.2 s).
    packages = [path.name for path in BASE_DIR.iterdir() if (path / "__init__.py").exists()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], cwd=BASE_DIR, stdout=subprocess.DEVNULL)
    # Started after the models exist, as in a deployment, so the worker can preload their adapters.
    command = [sys.executable, "manage.py", "rqworker", "evaluations"]
    if args.worker_class:
        command += ["--worker-class", args.worker_class]
    worker = subprocess.Popen(command, cwd=BASE_DIR, env=worker_env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    ctx = Context(args=args, run=run, author=author, models=models, base_url=base_url, server=server, worker=worker)
    try:
        # Wait for the worker to be up, so start-up time is not counted as engine time.
        from rq import Worker

        deadline = time.monotonic() + 60
        while not Worker.all(queue=queue) and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"scenario         {args.scenario}; machine load {os.getloadavg()[0]:.1f} at the start")
        SCENARIOS[args.scenario](ctx)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.terminate()
        server.wait(timeout=10)
        for cleanup in ctx.cleanups:
            cleanup()
        if not args.keep:
            from evaluations.models import Execution

            Execution.objects.filter(test_case__in=ctx.every_test).delete()
            TestCase.objects.filter(pk__in=[t.pk for t in ctx.every_test]).delete()
            LLMModel.objects.filter(pk__in=[m.pk for m in models]).delete()
            author.delete()


if __name__ == "__main__":
    main()
