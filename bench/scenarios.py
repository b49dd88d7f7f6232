"""The scenarios of bench/throughput.py (`--scenario NAME`), each a function of the bench's Context,
registered in SCENARIOS with @scenario("name"); the module docstring of bench/throughput.py says what
each one measures.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness import (
    BASE_DIR,
    Context,
    Round,
    adapter_baseline,
    command_timeline,
    create_tests,
    fake_control,
    measure,
    spread,
    tree_cpu_seconds,
    wait_finished,
)

Scenario = Callable[[Context], None]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario under `--scenario name`."""

    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


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


@scenario("throughput")
def throughput(ctx: Context) -> None:
    args = ctx.args
    tests_needed = math.ceil(args.evaluations / len(ctx.models))
    rounds = []
    for number in range(args.repeat):
        tests = create_tests(ctx.author, f"{ctx.run}-{number}", tests_needed)
        ctx.every_test += tests
        rounds.append(measure(tests, ctx.models, ctx.worker, ctx.server))
        time.sleep(1)  # the worker warms the leaderboards after a batch; let it, between rounds
    report(rounds, args, tests_needed, len(ctx.models))
    if not args.no_baseline:
        baseline = adapter_baseline(args.provider, ctx.base_url, rounds[0].total, args.concurrency)
        ratio = statistics.median(measured.wall for measured in rounds) / baseline
        print(f"adapter alone    {baseline:.2f} s for the same calls (median engine wall / this = {ratio:.2f})")


@scenario("many-runs")
def many_runs(ctx: Context) -> None:
    """100 users each POST a run of one test over 5 models, all at once, through the API: over HTTP to
    gunicorn as the Dockerfile serves it (--web gunicorn, the default), or through Django's test client in
    the bench's own process (--web in-process, 20 threads under one GIL)."""
    from django.db import connections

    from accounts.models import User
    from accounts.services import api_key_create

    runs, per_run = 100, 5
    models = ctx.models[:per_run]
    users = [User.objects.create_user(f"bench-{ctx.run}-u{i}@example.com", password=None) for i in range(runs)]
    ctx.cleanups.append(lambda: User.objects.filter(pk__in=[user.pk for user in users]).delete())
    keys = [api_key_create(user=user, name="bench")[1] for user in users]
    body = {"model_ids": [str(model.pk) for model in models]}
    ideal = runs * per_run * (ctx.args.latency_ms / 1000) / ctx.args.concurrency
    web = WebServer(ctx) if ctx.args.web == "gunicorn" else None
    clients = runs if web else 20
    walls: list[float] = []
    posted: list[float] = []
    posting_cpu: list[float] = []
    web_cpus: list[float] = []
    worker_cpus: list[float] = []
    try:
        for number in range(ctx.args.repeat):
            tests = create_tests(ctx.author, f"{ctx.run}-many-{number}", runs)
            ctx.every_test += tests
            post = web.poster(tests, keys, body) if web else in_process_poster(tests, keys, body)
            worker_cpu = tree_cpu_seconds(ctx.worker.pid)
            web_cpu = web.cpu() if web else 0.0
            own_cpu = time.process_time()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                started = time.monotonic()
                ids = list(pool.map(post, range(runs)))
                posted.append(time.monotonic() - started)
                posting_cpu.append(time.process_time() - own_cpu)
                walls.append(wait_finished(ids, ctx.worker, started))
                list(pool.map(lambda _: connections.close_all(), range(clients)))
            web_cpus.append(web.cpu() - web_cpu if web else posting_cpu[-1])
            time.sleep(0.2)  # the work horse exits and is reaped: its CPU then counts in its parent's
            worker_cpus.append(tree_cpu_seconds(ctx.worker.pid) - worker_cpu)
            print(
                f"round {number + 1:<2}         all {runs} POSTs answered in {posted[-1]:.2f} s "
                f"({web_cpus[-1]:.2f} s CPU serving them), all completed in {walls[-1]:.2f} s "
                f"(ideal {ideal:.2f} s, efficiency {ideal / walls[-1]:.3f}); worker CPU {worker_cpus[-1]:.2f} s"
            )
            print("                 " + timeline(ids))
            time.sleep(1)
    finally:
        if web:
            web.stop()
    served = f"gunicorn, {web.workers} workers, {clients} HTTP clients" if web else f"{clients} client threads"
    print(f"many-runs        {runs} runs x {per_run} models, {served}, one rq worker")
    print(f"POSTs answered   {spread(posted)}")
    where = "the gunicorn workers" if web else "the test client, Django and the POSTs, in the bench's process"
    print(f"serving CPU      {spread(web_cpus)} ({where})")
    print(f"all completed    {spread(walls)}; ideal {ideal:.2f} s")
    print(f"worker CPU       {spread(worker_cpus)} (work horses included)")
    print(f"machine load     {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")


@scenario("api-run")
def api_run(ctx: Context) -> None:
    """SPEC §15 item 2 through the API: one user POSTs a run of one test over 5 models to gunicorn while the
    worker is idle; from the 202 to the first provider call, and from the last answer to `completed` in the
    database (polled every 5 ms), per round."""
    from accounts.models import User
    from accounts.services import api_key_create
    from evaluations.models import Execution

    user = User.objects.create_user(f"bench-{ctx.run}-api@example.com", password=None)
    ctx.cleanups.append(user.delete)
    key = api_key_create(user=user, name="bench")[1]
    body = {"model_ids": [str(model.pk) for model in ctx.models[:5]]}
    tests = create_tests(ctx.author, f"{ctx.run}-api", ctx.args.repeat)
    ctx.every_test += tests
    web = WebServer(ctx)
    answered: list[float] = []
    to_first: list[float] = []
    to_completed: list[float] = []
    try:
        for number, test in enumerate(tests):
            time.sleep(1)  # the worker idle, its last work horse reaped
            fake_control(ctx.base_url, "reset", {})
            post = web.poster([test], [key], body)
            sent = time.time()
            execution_id = post(0)
            accepted = time.time()
            finished = Execution.objects.filter(pk=execution_id).unfinished()
            while finished.exists():
                time.sleep(0.005)
            visible = time.time()
            stats = fake_control(ctx.base_url, "stats")
            answered.append(accepted - sent)
            to_first.append(stats["first_request_at"] - accepted)
            to_completed.append(visible - stats["last_answer_at"])
            print(
                f"round {number + 1:<2}         POST to 202 {answered[-1]:.3f} s, 202 to first call "
                f"{to_first[-1]:.3f} s, last answer to completed {to_completed[-1]:.3f} s"
            )
    finally:
        web.stop()
    print(f"api-run          1 test x 5 models, gunicorn ({web.workers} workers), one idle rq worker")
    print(f"POST to 202      {spread(answered, 3)}")
    print(f"202 to 1st call  {spread(to_first, 3)}")
    print(f"answer to done   {spread(to_completed, 3)} (last answer to `completed` visible in the database)")


def in_process_poster(tests: list[Any], keys: list[str], body: dict[str, Any]) -> Callable[[int], str]:
    """POST run i through Django's test client in this process, one client per thread."""
    from django.db import connections
    from django.test import Client

    local = threading.local()

    def post(i: int) -> str:
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

    return post


class WebServer:
    """gunicorn serving the app as the Dockerfile does (sync workers; --web-workers of them), on 127.0.0.1."""

    def __init__(self, ctx: Context) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workers = ctx.args.web_workers
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "gunicorn", "openbench.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", str(self.workers), "--backlog", "2048", "--log-level", "warning"]
        self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.request("GET", "/health", None, {})
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start.") from None
                time.sleep(0.2)
        # Every worker answers once before the clock starts (each imports the URLconf on its first request).
        with ThreadPoolExecutor(max_workers=self.workers * 4) as pool:
            list(pool.map(lambda _: self.request("GET", "/health", None, {}), range(self.workers * 8)))

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            # As behind the TLS proxy a deployment has (SECURE_PROXY_SSL_HEADER): no redirect to https.
            connection.request(method, path, body, {**headers, "X-Forwarded-Proto": "https"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def poster(self, tests: list[Any], keys: list[str], body: dict[str, Any]) -> Callable[[int], str]:
        import json

        payload = json.dumps(body).encode()

        def post(i: int) -> str:
            headers = {"X-API-Key": keys[i], "Content-Type": "application/json"}
            status, content = self.request("POST", f"/api/v1/tests/{tests[i].pk}/run", payload, headers)
            if status != 202:
                raise SystemExit(f"POST run answered {status}: {content[:300]!r}")
            return str(json.loads(content)["id"])

        return post

    def cpu(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def timeline(ids: list[str]) -> str:
    """Where a many-runs round's time went, from the executions' own timestamps: from the first POST's row to
    each execution's start (the queue and the worker's pick-up) and from its start to its end."""
    from evaluations.models import Execution

    rows = list(Execution.objects.filter(pk__in=ids).values_list("created_at", "started_at", "completed_at"))
    first = min(created for created, _, _ in rows)
    waits = sorted((started - created).total_seconds() for created, started, _ in rows if started)
    runs = sorted((completed - started).total_seconds() for _, started, completed in rows if started and completed)
    last_created = max(created for created, _, _ in rows)
    last_done = max(completed for _, _, completed in rows if completed)
    return (
        f"rows created over {(last_created - first).total_seconds():.2f} s; created -> started median "
        f"{statistics.median(waits):.2f} s (max {waits[-1]:.2f}); started -> completed median "
        f"{statistics.median(runs):.2f} s (max {runs[-1]:.2f}); last row created -> last completed "
        f"{(last_done - last_created).total_seconds():.2f} s"
    )


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
            fake_control(ctx.base_url, "reset", {})
            started, started_at = time.monotonic(), time.time()
            done = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
            walls.append(time.monotonic() - started)
            ended_at = time.time()
            if done.returncode != 0:
                raise SystemExit(f"run_batch failed ({done.returncode}): {done.stderr[-2000:]}")
            print(
                f"{tests_count} x {models_count:<3} round {number + 1}: {walls[-1]:.2f} s "
                f"(ideal {ideal:.2f} s, efficiency {ideal / walls[-1]:.3f}; "
                f"{command_timeline(started_at, ended_at, fake_control(ctx.base_url, 'stats'))})"
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
    share of requests the server refused. Each round is a new work horse; it starts from the limit the
    earlier ones learnt (kept in Redis): the first round learns."""
    allowed, tests_count, models_count = 20, 50, min(20, len(ctx.models))

    def fake(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return fake_control(ctx.base_url, path, body)

    fake("config", {"max_concurrent": allowed, "retry_after": 0.5})  # the bench's own server, stopped at the end
    # Nothing learnt by an earlier bench (kept in Redis for LEARNED_TTL): the first round learns, as documented.
    from django.conf import settings

    from evaluations.runner.adaptive import LearnedLimits

    LearnedLimits(settings.REDIS_URL).forget_all()
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
        command.append("--yes")  # as in batch: the fake models' estimate (above RUN_BATCH_CONFIRM_USD) is not timed
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
