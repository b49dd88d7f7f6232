"""Throughput of the evaluation engine, through ONE rq worker against a fake OpenAI-compatible server with a
fixed latency, on real PostgreSQL and Redis.

    DATABASE_URL=postgresql://... REDIS_URL=redis://... python bench/throughput.py [--scenario NAME] \
        [--evaluations 2000] [--latency-ms 100] [--concurrency 50] [--models 40] [--repeat 3]
        [--worker-class rq.SimpleWorker]

Scenarios (`SCENARIOS`, a registry: add one with @scenario("name")):

* throughput (default): a round is one `executions_start_batch` over ceil(N / models) new approved tests,
  i.e. what `manage.py run_batch` does, timed until every execution has finished. Prints wall time, the
  ideal time N x latency / C, the efficiency (ideal / wall), evaluations per second, the worker's CPU and
  peak RSS.
* many-runs: 100 runs of 1 test x 5 models POSTed at once to /api/v1/tests/{id}/run by 100 users
  (API keys), from a pool of 20 client threads through Django's full request stack (the test client),
  timed from the first POST until every execution has finished.
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
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


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
    parser.add_argument("--keep", action="store_true", help="Keep the tests, models and results it created.")
    parser.add_argument(
        "--no-baseline", action="store_true", help="Skip the adapter-only run (same calls, no engine, no database)."
    )
    return parser.parse_args()


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in kB, (0, 0) when it is gone."""
    current = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return current, peak


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (rq's forked work horse)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return pids
    for child in children:
        pids += process_tree(int(child))
    return pids


def start_fake_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "providers.testing.fake_servers", "openai"),
            *("--port", "0", "--latency-ms", str(latency_ms), "--default-answer", "Paris"),
        ],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("READY "):
        process.kill()
        raise SystemExit(f"The fake server did not start: {line!r}")
    return process, line.split(" ", 1)[1] + "/v1"


def adapter_baseline(provider_name: str, base_url: str, n: int, concurrency: int) -> float:
    """Seconds for the same number of calls straight through the adapter (no engine, no database): what
    this machine and the fake server allow at best, to judge the engine's own overhead."""
    import asyncio

    from providers.base import GenerationRequest
    from providers.registry import build_provider

    async def run() -> float:
        provider = build_provider(provider_name, options={"base_url": base_url})
        slots = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with slots:
                await provider.generate(GenerationRequest(model_id="fake", prompt=f"baseline {i}", timeout=60))

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.monotonic() - started
        await provider.aclose()
        return elapsed

    return asyncio.run(run())


@dataclass
class Round:
    """What one round measured."""

    total: int
    done: int
    completed: int
    wall: float
    dispatched: float
    worker_cpu: float
    server_cpu: float
    peak_any_kb: int
    peak_main_kb: int


def create_tests(author: Any, run: str, count: int, *, category: str = "bench") -> list[Any]:
    """`count` approved tests with their first revision, new for every round (no cached answers)."""
    from catalog.models import TestCase, TestCaseRevision

    tests = TestCase.objects.bulk_create(
        [
            TestCase(
                title=f"Bench {run} {i}",
                category=category,
                prompt=f"[{run}-{i}] What is the capital of France?",
                expected_output="Paris",
                evaluation_type="exact_match",
                status=TestCase.Status.APPROVED,
                created_by=author,
            )
            for i in range(count)
        ]
    )
    TestCaseRevision.objects.bulk_create(
        [TestCaseRevision(test_case=t, revision=1, created_by=author, **t.scored_snapshot()) for t in tests]
    )
    return tests


def measure(tests: list[Any], models: list[Any], author: Any, worker: subprocess.Popen[bytes], server: Any) -> Round:
    """One `executions_start_batch` over the tests, timed until every execution has finished."""
    from evaluations.models import Execution, TestResult
    from evaluations.services import executions_start_batch

    peak_main = peak_any = 0
    cpu: dict[int, float] = {}
    cpu_before = cpu_seconds(worker.pid)
    server_cpu_before = cpu_seconds(server.pid)
    started = time.monotonic()
    executions = executions_start_batch(test_cases=tests, models=models, started_by=author)
    dispatched = time.monotonic() - started
    ids = [execution.pk for execution in executions]
    pending = Execution.objects.filter(pk__in=ids).unfinished()
    last_check = 0.0
    while True:
        for pid in process_tree(worker.pid):
            cpu[pid] = cpu_seconds(pid) - (cpu_before if pid == worker.pid else 0.0)
            current, peak = rss_kb(pid)
            peak_any = max(peak_any, current, peak)
            if pid == worker.pid:
                peak_main = max(peak_main, current, peak)
        now = time.monotonic()
        if now - last_check >= 0.05:
            last_check = now
            if not pending.exists():
                break
        if worker.poll() is not None:
            raise SystemExit("The worker died.")
        time.sleep(0.01)
    wall = time.monotonic() - started
    results = TestResult.objects.filter(execution_id__in=ids)
    return Round(
        total=sum(execution.total_evaluations for execution in executions),
        done=results.count(),
        completed=results.filter(status="completed").count(),
        wall=wall,
        dispatched=dispatched,
        worker_cpu=sum(cpu.values()),
        server_cpu=cpu_seconds(server.pid) - server_cpu_before,
        peak_any_kb=peak_any,
        peak_main_kb=peak_main,
    )


def report(rounds: list[Round], args: argparse.Namespace, tests: int, models: int) -> None:
    from django_rq.workers import get_worker_class

    ideal = rounds[0].total * (args.latency_ms / 1000) / args.concurrency
    print(f"evaluations      {rounds[0].total} ({tests} tests x {models} models), {len(rounds)} round(s)")
    print(f"latency, conc.   {args.latency_ms:g} ms, {args.concurrency}")
    print(f"worker           {args.worker_class or get_worker_class().__name__ + ' (settings.RQ)'}")
    print(f"adapter          {args.provider}")
    if ideal:
        print(f"ideal time       {ideal:.2f} s (N x latency / C)")
    for number, measured in enumerate(rounds, 1):
        line = (
            f"round {number:<2}         wall {measured.wall:.2f} s"
            f" ({measured.dispatched:.2f} s creating and enqueueing), {measured.done / measured.wall:.0f} evaluations/s"
        )
        if ideal:
            line += f", efficiency {ideal / measured.wall:.3f}"
        print(line + f"; results {measured.done} ({measured.completed} completed)")
    walls = [measured.wall for measured in rounds]
    wall = statistics.median(walls)
    print(f"wall time        {wall:.2f} s median (min {min(walls):.2f}, max {max(walls):.2f})")
    if ideal:
        spread = f"worst {ideal / max(walls):.3f}, best {ideal / min(walls):.3f}"
        print(f"efficiency       {ideal / wall:.3f} median ({spread})")
    print(f"throughput       {rounds[0].total / wall:.0f} evaluations/s (median round)")
    cpu = statistics.median(measured.worker_cpu for measured in rounds)
    server_cpu = statistics.median(measured.server_cpu for measured in rounds)
    print(f"worker CPU       {cpu:.1f} s a round ({cpu / wall:.0%} of one core)")
    print(f"fake server CPU  {server_cpu:.1f} s a round ({server_cpu / wall:.0%} of one core)")
    print(f"machine load     {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")
    peak_any = max(measured.peak_any_kb for measured in rounds)
    peak_main = max(measured.peak_main_kb for measured in rounds)
    print(f"peak RSS         {peak_any / 1024:.0f} MB (any worker process), {peak_main / 1024:.0f} MB (main)")


@dataclass
class Context:
    """What every scenario gets: the parsed arguments, the bench's user and models, the worker, the fake server."""

    args: argparse.Namespace
    run: str
    author: Any
    models: list[Any]
    base_url: str
    server: subprocess.Popen[str]
    worker: subprocess.Popen[bytes]
    every_test: list[Any] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


Scenario = Callable[[Context], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario under `--scenario name`."""

    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds)"
    )


def wait_finished(ids: list[Any], worker: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from `started` until every execution has finished (checked every 10 ms)."""
    from evaluations.models import Execution

    pending = Execution.objects.filter(pk__in=ids).unfinished()
    while pending.exists():
        if worker.poll() is not None:
            raise SystemExit("The worker died.")
        time.sleep(0.01)
    return time.monotonic() - started


@scenario("throughput")
def throughput(ctx: Context) -> None:
    args = ctx.args
    tests_needed = math.ceil(args.evaluations / len(ctx.models))
    rounds = []
    for number in range(args.repeat):
        tests = create_tests(ctx.author, f"{ctx.run}-{number}", tests_needed)
        ctx.every_test += tests
        rounds.append(measure(tests, ctx.models, ctx.author, ctx.worker, ctx.server))
        time.sleep(1)  # the worker warms the leaderboards after a batch; let it, between rounds
    report(rounds, args, tests_needed, len(ctx.models))
    if not args.no_baseline:
        baseline = adapter_baseline(args.provider, ctx.base_url, rounds[0].total, args.concurrency)
        ratio = statistics.median(measured.wall for measured in rounds) / baseline
        print(f"adapter alone    {baseline:.2f} s for the same calls (median engine wall / this = {ratio:.2f})")


@scenario("many-runs")
def many_runs(ctx: Context) -> None:
    """100 users each POST a run of one test over 5 models, all at once, through the API."""
    from django.db import connections
    from django.test import Client

    from accounts.models import User
    from accounts.services import api_key_create

    runs, per_run, clients = 100, 5, 20
    models = ctx.models[:per_run]
    users = [User.objects.create_user(f"bench-{ctx.run}-u{i}@example.com", password=None) for i in range(runs)]
    ctx.cleanups.append(lambda: User.objects.filter(pk__in=[user.pk for user in users]).delete())
    keys = [api_key_create(user=user, name="bench")[1] for user in users]
    body = {"model_ids": [str(model.pk) for model in models]}
    ideal = runs * per_run * (ctx.args.latency_ms / 1000) / ctx.args.concurrency
    walls: list[float] = []
    posted: list[float] = []
    for number in range(ctx.args.repeat):
        tests = create_tests(ctx.author, f"{ctx.run}-many-{number}", runs)
        ctx.every_test += tests
        local = threading.local()

        def post(i: int, tests: list[Any] = tests, local: threading.local = local) -> str:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = Client()
            response = client.post(
                f"/api/v1/tests/{tests[i].pk}/run",
                body,
                content_type="application/json",
                headers={"X-API-Key": keys[i]},
                secure=True,
            )
            connections.close_all()  # as a server does after each request (the test client does not)
            if response.status_code != 202:
                raise SystemExit(f"POST run answered {response.status_code}: {response.content[:300]!r}")
            return str(response.json()["id"])

        def close_connection(_: int) -> None:
            connections.close_all()

        with ThreadPoolExecutor(max_workers=clients) as pool:
            started = time.monotonic()
            ids = list(pool.map(post, range(runs)))
            posted.append(time.monotonic() - started)
            walls.append(wait_finished(ids, ctx.worker, started))
            list(pool.map(close_connection, range(clients)))
        print(
            f"round {number + 1:<2}         all {runs} POSTs answered in {posted[-1]:.2f} s, "
            f"all completed in {walls[-1]:.2f} s (ideal {ideal:.2f} s, efficiency {ideal / walls[-1]:.3f})"
        )
        time.sleep(1)
    print(f"many-runs        {runs} runs x {per_run} models, {clients} client threads, one worker")
    print(f"POSTs answered   {spread(posted)}")
    print(f"all completed    {spread(walls)}; ideal {ideal:.2f} s")
    print(f"machine load     {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")


@scenario("batch")
def batch(ctx: Context) -> None:
    """`run_batch --all-models --wait` as a user runs it: a subprocess, timed from its start to its exit."""
    from catalog.models import LLMModel

    others = list(
        LLMModel.objects.active().exclude(pk__in=[model.pk for model in ctx.models]).values_list("pk", flat=True)
    )
    LLMModel.objects.filter(pk__in=others).update(is_active=False)
    ctx.cleanups.append(lambda: LLMModel.objects.filter(pk__in=others).update(is_active=True))
    shapes = [(500, 1), (50, min(40, len(ctx.models)))]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    for tests_count, models_count in shapes:
        LLMModel.objects.filter(pk__in=[model.pk for model in ctx.models]).update(is_active=False)
        LLMModel.objects.filter(pk__in=[model.pk for model in ctx.models[:models_count]]).update(is_active=True)
        ideal = tests_count * models_count * (ctx.args.latency_ms / 1000) / ctx.args.concurrency
        walls: list[float] = []
        for number in range(ctx.args.repeat):
            category = f"bench-{ctx.run}-{tests_count}x{models_count}-{number}"
            ctx.every_test += create_tests(ctx.author, category, tests_count, category=category)
            # --yes: the bench's mock models cost nothing real, and the confirmation's estimate is not what is timed.
            command = [sys.executable, "manage.py", "run_batch", "--category", category, "--all-models", "--wait"]
            command.append("--yes")
            started = time.monotonic()
            done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
            walls.append(time.monotonic() - started)
            if done.returncode != 0:
                raise SystemExit(f"run_batch failed ({done.returncode}): {done.stderr[-2000:]}")
            print(
                f"{tests_count} x {models_count:<3} round {number + 1}: {walls[-1]:.2f} s "
                f"(ideal {ideal:.2f} s, efficiency {ideal / walls[-1]:.3f})"
            )
            time.sleep(1)
        efficiencies = [ideal / wall for wall in walls]
        print(
            f"batch {tests_count} x {models_count:<3}  command start to exit {spread(walls)}; ideal {ideal:.2f} s; "
            f"efficiency median {statistics.median(efficiencies):.3f} ({min(efficiencies):.3f}-{max(efficiencies):.3f})"
        )
    print(f"machine load     {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")


@scenario("adaptive")
def adaptive(ctx: Context) -> None:
    """A server that takes 20 calls at once (429 + Retry-After + x-ratelimit headers beyond), the engine
    configured for C: `run_batch --models <20> --wait` over 50 tests, command start to exit, and the
    share of requests the server refused. Rounds share the worker's limiter: the first one learns."""
    import json
    from urllib.request import Request, urlopen

    allowed, tests_count, models_count = 20, 50, min(20, len(ctx.models))
    control = ctx.base_url.removesuffix("/v1") + "/_fake"

    def fake(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        method = "GET" if data is None and path == "stats" else "POST"
        request = Request(f"{control}/{path}", data=data, method=method)  # noqa: S310 - http://127.0.0.1 only
        with urlopen(request, timeout=10) as response:  # noqa: S310
            return dict(json.load(response))

    fake("config", {"max_concurrent": allowed, "retry_after": 0.5})  # the bench's own server, stopped at the end
    names = [model.name for model in ctx.models[:models_count]]
    ideal = tests_count * models_count * (ctx.args.latency_ms / 1000) / allowed
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    walls: list[float] = []
    refused: list[float] = []
    for number in range(ctx.args.repeat):
        category = f"bench-{ctx.run}-adaptive-{number}"
        ctx.every_test += create_tests(ctx.author, category, tests_count, category=category)
        fake("reset", {})
        command = [sys.executable, "manage.py", "run_batch", "--category", category, "--models", *names, "--wait"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
        walls.append(time.monotonic() - started)
        if done.returncode != 0:
            raise SystemExit(f"run_batch failed ({done.returncode}): {done.stderr[-2000:]}")
        stats = fake("stats")
        refusals = int(stats["outcomes"].get("rate_limit", 0))
        refused.append(refusals / max(1, int(stats["requests"])))
        print(
            f"round {number + 1:<2}         {walls[-1]:.2f} s ({walls[-1] / ideal:.2f} x ideal), "
            f"{refusals} of {stats['requests']} requests refused ({refused[-1]:.1%}), "
            f"at most {stats['max_in_flight']} in flight at the server"
        )
        time.sleep(1)
    print(
        f"adaptive         server takes {allowed} at once, C = {ctx.args.concurrency}, {tests_count} x {models_count}"
    )
    print(
        f"command wall     {spread(walls)}; ideal N x latency / {allowed} = {ideal:.2f} s, target {1.4 * ideal:.2f} s"
    )
    print(
        f"refused          median {statistics.median(refused):.1%} (min {min(refused):.1%}, max {max(refused):.1%});"
        " target <= 5 %"
    )
    print(f"machine load     {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")


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
