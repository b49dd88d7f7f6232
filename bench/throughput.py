"""Throughput of the evaluation engine: N evaluations through ONE rq worker against a fake OpenAI-compatible
server with a fixed latency, on real PostgreSQL and Redis.

    DATABASE_URL=postgresql://... REDIS_URL=redis://... python bench/throughput.py \
        [--evaluations 2000] [--latency-ms 100] [--concurrency 50] [--models 40] [--repeat 3]
        [--worker-class rq.SimpleWorker]

Prints wall time, the ideal time N x latency / C, the efficiency (ideal / wall), evaluations per second and
the worker's peak RSS. A round is one `executions_start_batch` over ceil(N / models) new approved tests,
i.e. what `manage.py run_batch` does; rounds run against the same worker, each one is printed and the
median is reported (one round on a shared machine can be off by a few points). Everything it creates is
deleted at the end (unless --keep).
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
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def create_tests(author: Any, run: str, count: int) -> list[Any]:
    """`count` approved tests with their first revision, new for every round (no cached answers)."""
    from catalog.models import TestCase, TestCaseRevision

    tests = TestCase.objects.bulk_create(
        [
            TestCase(
                title=f"Bench {run} {i}",
                category="bench",
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
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
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
    tests_needed = math.ceil(args.evaluations / args.models)
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
    every_test: list[Any] = []
    # Started after the models exist, as in a deployment, so the worker can preload their adapters.
    command = [sys.executable, "manage.py", "rqworker", "evaluations"]
    if args.worker_class:
        command += ["--worker-class", args.worker_class]
    worker = subprocess.Popen(command, cwd=BASE_DIR, env=worker_env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    try:
        # Wait for the worker to be up, so start-up time is not counted as engine time.
        from rq import Worker

        deadline = time.monotonic() + 60
        while not Worker.all(queue=queue) and time.monotonic() < deadline:
            time.sleep(0.1)
        rounds = []
        for number in range(args.repeat):
            tests = create_tests(author, f"{run}-{number}", tests_needed)
            every_test += tests
            rounds.append(measure(tests, models, author, worker, server))
            time.sleep(1)  # the worker warms the leaderboards after a batch; let it, between rounds
        report(rounds, args, tests_needed, len(models))
        if not args.no_baseline:
            baseline = adapter_baseline(args.provider, base_url, rounds[0].total, args.concurrency)
            ratio = statistics.median(measured.wall for measured in rounds) / baseline
            print(f"adapter alone    {baseline:.2f} s for the same calls (median engine wall / this = {ratio:.2f})")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.terminate()
        server.wait(timeout=10)
        if not args.keep:
            from evaluations.models import Execution

            Execution.objects.filter(test_case__in=every_test).delete()
            TestCase.objects.filter(pk__in=[t.pk for t in every_test]).delete()
            LLMModel.objects.filter(pk__in=[m.pk for m in models]).delete()
            author.delete()


if __name__ == "__main__":
    main()
