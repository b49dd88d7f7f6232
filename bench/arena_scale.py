"""Arena at scale: the ratings read right after a vote under concurrent readers, and picking the next battle.

Fills a database (default openbench_arena; created and migrated when missing) with MODELS models, TESTS
approved tests, every model's latest result on every test (COPY into the leaderboard's read model; 3% failed)
and VOTES people's votes, then prints:

* ratings: N readers (threads, one barrier) asking for the people's ratings right after a vote, as the
  page and the API do; wall time, the process's CPU seconds (user + sys, all threads) and how many
  Bradley–Terry fits ran. Several rounds, medians.
* battle_pick: the next battle's test and pair, median and p95 of several picks, and the EXPLAIN of the
  latest-results query behind it.

    .venv/bin/python bench/arena_scale.py                    # reuses loaded data when it is complete
    .venv/bin/python bench/arena_scale.py --reload           # drop and recreate the bench rows

Environment: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/openbench_arena),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/7; the bench flushes only its own keys' generations).

Not bench/arena.py: bench/throughput.py puts bench/ first on the import path, where that name hid the arena app.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS, TESTS, VOTES = 200, 5_000, 20_000
# Votes fall on the first RATED models only: a Bradley–Terry fit of all 200 with 200 bootstrap rounds takes
# minutes on this machine, which would make the ratings rounds unbearably long (README: 0.5 s for 40 models).
RATED = 40
READERS, ROUNDS, PICKS = 8, 5, 20
PREFIX = "arena-bench"


def configure() -> None:
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/openbench_arena"
    )
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")


def loaded() -> bool:
    from arena.models import Vote
    from catalog.models import LLMModel
    from leaderboard.models import LatestResult

    models = LLMModel.objects.filter(name__startswith=PREFIX)
    return (
        models.count() == MODELS
        and LatestResult.objects.filter(model__in=models).count() == MODELS * TESTS
        and Vote.objects.count() == VOTES
    )


def wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE arena_votes, arena_battles, leaderboard_latest_results CASCADE")
    from accounts.models import User
    from catalog.models import LLMModel, TestCase

    TestCase.objects.filter(title__startswith=PREFIX).delete()
    LLMModel.objects.filter(name__startswith=PREFIX).delete()
    User.objects.filter(email__startswith=PREFIX).delete()


def load() -> None:
    """MODELS models × TESTS tests of latest results (3% failed), and VOTES votes over random pairs with a
    hidden strength per model."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from arena.models import Battle, Vote
    from catalog.models import LLMModel, TestCase

    rng = np.random.default_rng(7)
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        author = User.objects.create(email=f"{PREFIX}@example.com", display_name="Bench")
        models = LLMModel.objects.bulk_create(
            LLMModel(
                name=f"{PREFIX}-{i:03d}", display_name=f"Bench {i:03d}", provider="openai", provider_model_id=f"b{i}"
            )
            for i in range(MODELS)
        )
        tests = TestCase.objects.bulk_create(
            (
                TestCase(
                    title=f"{PREFIX} {j}",
                    category="math",
                    prompt=f"Question {j}",
                    evaluation_type="exact_match",
                    status="approved",
                    is_public=True,
                    created_by=author,
                )
                for j in range(TESTS)
            ),
            batch_size=2000,
        )
        failed = rng.random((TESTS, MODELS)) < 0.03
        day = now.date().isoformat()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                "COPY leaderboard_latest_results (model_id, test_case_id, revision, result_id, samples, status, score, "
                "passed, is_error, total_tokens, cost, executed_at, day, category, difficulty, counted) FROM STDIN"
            ) as copy,
        ):
            for j, test in enumerate(tests):
                copy.write(
                    "".join(
                        f"{model.pk}\t{test.pk}\t1\t{uuid.uuid4()}\t1\t{'failed' if failed[j, m] else 'completed'}\t"
                        f"{0.0 if failed[j, m] else 1.0}\t{'f' if failed[j, m] else 't'}\t"
                        f"{'t' if failed[j, m] else 'f'}\t0\t0\t{now.isoformat()}\t{day}\tmath\tmedium\tt\n"
                        for m, model in enumerate(models)
                    )
                )
        print(f"  {MODELS * TESTS:,} latest results: {time.perf_counter() - started:.1f}s", flush=True)
        voters = User.objects.bulk_create(
            User(email=f"{PREFIX}-{k}@example.com", display_name=f"v{k}") for k in range(200)
        )
        strength = rng.normal(0, 1, MODELS)
        battles, outcomes = [], []
        for k in range(VOTES):
            a, b = rng.choice(RATED, size=2, replace=False)
            p = 1 / (1 + np.exp(strength[b] - strength[a]))
            draw = rng.random()
            outcomes.append("tie" if draw < 0.1 else "a" if draw < 0.1 + 0.9 * p else "b")
            battles.append(
                Battle(
                    test_case=tests[int(rng.integers(TESTS))],
                    revision=1,
                    model_a=models[a],
                    model_b=models[b],
                    answer_a="x",
                    answer_b="y",
                    user=voters[k % len(voters)],
                    status=Battle.Status.DECIDED,
                )
            )
        Battle.objects.bulk_create(battles, batch_size=5000)
        Vote.objects.bulk_create(
            (
                Vote(
                    battle=battle,
                    user=battle.user,
                    winner=winner,
                    model_a=battle.model_a,
                    model_b=battle.model_b,
                    test_case=battle.test_case,
                )
                for battle, winner in zip(battles, outcomes, strict=True)
            ),
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE leaderboard_latest_results")
        cursor.execute("VACUUM ANALYZE arena_votes")
        cursor.execute("ANALYZE arena_battles")
    print(f"loaded in {time.perf_counter() - started:.1f}s", flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ratings_round() -> tuple[float, float, int, list[int]]:
    """One vote's invalidation, then READERS concurrent reads: (wall s, CPU s, fits, votes seen per reader)."""
    from django.db import connection

    import arena.selectors as selectors
    from arena.selectors import arena_cache_invalidate, cached_arena_ratings

    fits = 0
    lock = threading.Lock()
    original = selectors.arena_ratings

    def counting(**kwargs: Any) -> dict[str, Any]:
        nonlocal fits
        with lock:
            fits += 1
        return original(**kwargs)

    selectors.arena_ratings = counting
    seen: list[int] = []
    barrier = threading.Barrier(READERS + 1)

    def read() -> None:
        try:
            barrier.wait()
            answer = cached_arena_ratings(source="people")
            with lock:
                seen.append(answer["votes"])
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=read) for _ in range(READERS)]
        for thread in threads:
            thread.start()
        arena_cache_invalidate()
        cpu, wall = cpu_seconds(), time.perf_counter()
        barrier.wait()
        for thread in threads:
            thread.join()
        return time.perf_counter() - wall, cpu_seconds() - cpu, fits, seen
    finally:
        selectors.arena_ratings = original


def bench_ratings() -> None:
    from django.conf import settings
    from django.core.cache import cache

    from arena.selectors import cached_arena_ratings

    cache.delete_pattern("*arena*")  # type: ignore[attr-defined]
    cached_arena_ratings(source="people")  # an earlier answer exists, as on a running site
    refit = getattr(settings, "ARENA_REFIT_SECONDS", None)
    print(f"ratings: {READERS} concurrent readers right after a vote (ARENA_REFIT_SECONDS={refit}), {os.getloadavg()}")
    walls, cpus, fits = [], [], []
    for _ in range(ROUNDS):
        if refit:
            time.sleep(refit)  # past the interval: the vote is due to show
        wall, cpu, fit, seen = ratings_round()
        walls.append(wall)
        cpus.append(cpu)
        fits.append(fit)
        print(f"  wall {wall:.2f}s  cpu {cpu:.2f}s  fits {fit}  votes seen {sorted(set(seen))}", flush=True)
    print(
        f"  median wall {statistics.median(walls):.2f}s, cpu {statistics.median(cpus):.2f}s, "
        f"fits {statistics.median(fits):g}"
    )


def bench_pick() -> None:
    from django.db import connection

    from arena.services import battle_pick

    print(f"battle_pick over {MODELS} models × {TESTS} tests, {os.getloadavg()}")
    battle_pick()  # warm
    times, cpus = [], []
    for _ in range(PICKS):
        cpu, wall = cpu_seconds(), time.perf_counter()
        battle_pick()
        times.append((time.perf_counter() - wall) * 1000)
        cpus.append((cpu_seconds() - cpu) * 1000)
    times.sort()
    print(
        f"  median {statistics.median(times):.0f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.0f} ms "
        f"(process CPU median {statistics.median(cpus):.0f} ms)"
    )
    queries: list[str] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(connection.ops.compose_sql(sql, params) if params else sql)  # type: ignore[attr-defined]
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        battle_pick()
    with connection.cursor() as cursor:
        for sql in queries:
            if "leaderboard_latest_results" not in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            print("  " + sql[:160] + ("…" if len(sql) > 160 else ""))
            for (line,) in cursor.fetchall():
                print("    " + line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--only", choices=["ratings", "pick"])
    args = parser.parse_args()
    configure()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if args.reload or not loaded():
        wipe()
        load()
    if args.only != "pick":
        bench_ratings()
    if args.only != "ratings":
        bench_pick()


if __name__ == "__main__":
    main()
