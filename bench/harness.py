"""The bench's harness: the fake server, the adapter-only baseline, the bench's tests, and the
measurements of the worker (CPU, RSS, time to finish), shared by the scenarios of bench/throughput.py.

Imported by the scripts of bench/ (run as `python bench/throughput.py`), after Django is set up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


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


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children: those running, and those it has reaped (cutime, cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return cpu_seconds(pid) + reaped + sum(cpu_seconds(child) for child in process_tree(pid)[1:])


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


def fake_control(base_url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bench's fake server's control endpoints: GET stats, POST reset / config (bench/README: /_fake/...)."""
    import json
    from urllib.request import Request, urlopen

    data = json.dumps(body).encode() if body is not None else None
    method = "GET" if data is None and path == "stats" else "POST"
    control = base_url.removesuffix("/v1") + "/_fake"
    request = Request(f"{control}/{path}", data=data, method=method)  # noqa: S310 - http://127.0.0.1 only
    with urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.load(response))


def command_timeline(started_at: float, ended_at: float, stats: dict[str, Any]) -> str:
    """A command's fixed costs from the fake server's clock: its start to the first provider call, and the
    last answer to its exit (both wall-clock, time.time())."""
    first, last = stats.get("first_request_at"), stats.get("last_answer_at")
    if first is None or last is None:
        return "no call reached the server"
    return f"start to first call {first - started_at:.2f} s, last answer to exit {ended_at - last:.2f} s"


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


def measure(tests: list[Any], models: list[Any], worker: subprocess.Popen[bytes], server: Any) -> Round:
    """One `executions_start_batch` over the tests, timed until every execution has finished."""
    from evaluations.models import Execution, TestResult
    from evaluations.services import executions_start_batch

    peak_main = peak_any = 0
    cpu_before = tree_cpu_seconds(worker.pid)
    server_cpu_before = cpu_seconds(server.pid)
    started = time.monotonic()
    # As `run_batch` without --user starts it: an operator's batch, charged to the provider caps only.
    executions = executions_start_batch(test_cases=tests, models=models, started_by=None)
    dispatched = time.monotonic() - started
    ids = [execution.pk for execution in executions]
    pending = Execution.objects.filter(pk__in=ids).unfinished()
    last_check = 0.0
    while True:
        for pid in process_tree(worker.pid):
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
    # The work horse's CPU in full: what it still does once the executions are finished (the leaderboard,
    # models' health, warming) counts too, so wait (a little) for it to exit and be reaped.
    deadline = time.monotonic() + 10
    while len(process_tree(worker.pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker_cpu = tree_cpu_seconds(worker.pid) - cpu_before
    results = TestResult.objects.filter(execution_id__in=ids)
    return Round(
        total=sum(execution.total_evaluations for execution in executions),
        done=results.count(),
        completed=results.filter(status="completed").count(),
        wall=wall,
        dispatched=dispatched,
        worker_cpu=worker_cpu,
        server_cpu=cpu_seconds(server.pid) - server_cpu_before,
        peak_any_kb=peak_any,
        peak_main_kb=peak_main,
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


def spread(values: list[float], digits: int = 2) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"median {median:.{digits}f} s (min {low:.{digits}f}, max {high:.{digits}f}, {len(values)} rounds)"


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
    cleanups: list[Callable[[], object]] = field(default_factory=list)  # run at the end; what they return is ignored
