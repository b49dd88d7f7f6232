"""Back-pressure on provider calls, each piece through its own interface: `backoff_delay`, the
`CircuitBreaker` (on a clock the test moves) and the `RateLimiter` (per process, and shared through a
real Redis by two real processes)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from evaluations.runner.limits import CircuitBreaker, RateLimiter, backoff_delay

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture
def seeded_random() -> Iterator[None]:
    """backoff_delay draws from the module-level `random`: seed it, and leave it as it was."""
    state = random.getstate()
    random.seed(20240611)
    yield
    random.setstate(state)


# --- backoff_delay ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 5, 8, 30])
def test_backoff_is_full_jitter_below_the_exponential_ceiling_and_the_cap(seeded_random, attempt) -> None:
    base, cap = 0.5, 8.0
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delays = [backoff_delay(attempt, base=base, cap=cap) for _ in range(2000)]
    assert all(0.0 <= delay <= ceiling for delay in delays)
    # Full jitter: the whole range is used, not a fixed step (which would make every client retry in step).
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 10])
@pytest.mark.parametrize("retry_after", [0.75, 3.0, 7.99])
def test_backoff_never_waits_less_than_retry_after(seeded_random, attempt, retry_after) -> None:
    delays = [backoff_delay(attempt, base=0.5, cap=8.0, retry_after=retry_after) for _ in range(500)]
    assert min(delays) >= retry_after
    assert max(delays) <= 8.0


def test_a_retry_after_below_the_jitter_ceiling_still_leaves_jitter_above_it(seeded_random) -> None:
    # attempt 5: ceiling 8 s; Retry-After 1 s is a floor, not the delay.
    delays = [backoff_delay(5, base=0.5, cap=8.0, retry_after=1.0) for _ in range(500)]
    assert min(delays) == 1.0  # draws below the floor are raised to it
    assert max(delays) > 7.0


@pytest.mark.parametrize("retry_after", [8.01, 60.0, 86400.0])
def test_a_retry_after_beyond_the_cap_waits_exactly_the_cap(seeded_random, retry_after) -> None:
    for attempt in (1, 3, 10):
        assert backoff_delay(attempt, base=0.5, cap=8.0, retry_after=retry_after) == 8.0


@pytest.mark.parametrize("retry_after", [None, 0.0, -5.0])
def test_a_missing_or_meaningless_retry_after_is_ignored(seeded_random, retry_after) -> None:
    delays = [backoff_delay(1, base=0.5, cap=8.0, retry_after=retry_after) for _ in range(500)]
    assert all(0.0 <= delay <= 0.5 for delay in delays)
    assert min(delays) < 0.05


# --- CircuitBreaker ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown=30.0, clock=clock)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN


def test_the_breaker_opens_after_threshold_consecutive_failures_only(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # not consecutive: the count starts again
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    assert not breaker.allow()


def test_an_open_breaker_refuses_every_call_until_the_cooldown_has_passed(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.now += 29.9
    assert not any(breaker.allow() for _ in range(10))
    assert breaker.state == CircuitBreaker.OPEN
    clock.now += 0.1  # exactly the cooldown
    assert breaker.allow()
    assert breaker.state == CircuitBreaker.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through_at_a_time(breaker: CircuitBreaker, clock: Clock) -> None:
    trip(breaker)
    clock.now += 30.0
    assert breaker.allow()  # the probe
    clock.now += 100.0  # however long the probe takes, nobody else goes while it is out
    assert not any(breaker.allow() for _ in range(10))
    assert breaker.state == CircuitBreaker.HALF_OPEN


def test_a_successful_probe_closes_the_breaker(breaker: CircuitBreaker, clock: Clock) -> None:
    trip(breaker)
    clock.now += 30.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED
    assert all(breaker.allow() for _ in range(10))
    # The failure count started again: it takes `threshold` new failures to open.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.CLOSED


def test_a_failed_probe_reopens_the_breaker_for_a_whole_new_cooldown(breaker: CircuitBreaker, clock: Clock) -> None:
    trip(breaker)
    clock.now += 30.0
    assert breaker.allow()
    clock.now += 5.0
    breaker.record_failure()  # one failure is enough in half-open, whatever the threshold
    assert breaker.state == CircuitBreaker.OPEN
    clock.now += 29.9  # counted from the probe's failure, not from the first opening
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    assert breaker.state == CircuitBreaker.HALF_OPEN


def test_a_probe_that_tells_nothing_is_released_for_another(breaker: CircuitBreaker, clock: Clock) -> None:
    trip(breaker)
    clock.now += 30.0
    assert breaker.allow()
    breaker.release_probe()  # e.g. the probe's execution was cancelled
    assert breaker.state == CircuitBreaker.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_releasing_a_probe_is_harmless_when_no_probe_is_out(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.release_probe()
    assert breaker.state == CircuitBreaker.CLOSED
    trip(breaker)
    breaker.release_probe()
    assert breaker.state == CircuitBreaker.OPEN
    assert not breaker.allow()


def test_a_threshold_below_one_still_needs_a_failure(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=0, cooldown=1.0, clock=clock)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN


# --- RateLimiter --------------------------------------------------------------------------------------------


def test_without_redis_the_limiter_spaces_one_processes_calls_evenly() -> None:
    provider = f"local-{uuid.uuid4().hex}"  # the per-process schedule is shared by every limiter here
    rpm = 600  # one start every 0.1 s

    async def starts() -> list[float]:
        # Two limiters, as two jobs in one process would have: they share this process's schedule.
        first = RateLimiter(limits={provider: rpm})
        second = RateLimiter(limits={provider: rpm})
        times: list[float] = []

        async def one(limiter: RateLimiter) -> None:
            await limiter.acquire(provider)
            times.append(time.monotonic())

        await asyncio.gather(*(one(first if i % 2 else second) for i in range(6)))
        return sorted(times)

    times = asyncio.run(starts())
    assert times[-1] - times[0] >= 5 * 0.1 - 0.02
    assert all(later - earlier >= 0.1 - 0.02 for earlier, later in itertools.pairwise(times))


def test_an_unlimited_provider_never_waits() -> None:
    limiter = RateLimiter(limits={"limited": 1, "zero": 0})

    async def waits() -> list[float]:
        return [await limiter.acquire(name) for name in ("other", "zero", "other")]

    assert asyncio.run(waits()) == [0.0, 0.0, 0.0]


# A process that takes `count` slots from a Redis-shared limiter once told to go, and prints when it got each.
_LIMITED_PROCESS = """
import asyncio, json, sys, time
from evaluations.runner.limits import RateLimiter

redis_url, prefix, rpm, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    limiter = RateLimiter(limits={"shared": rpm}, redis_url=redis_url, key_prefix=prefix)
    await limiter.acquire("other")  # unlimited: no slot, but nothing to import or connect later either
    print("ready", flush=True)
    sys.stdin.readline()  # the go signal, given to both processes at once
    starts = []
    for _ in range(count):
        await limiter.acquire("shared")
        starts.append(time.time())
    await limiter.aclose()
    print(json.dumps(starts), flush=True)

asyncio.run(main())
"""


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the limiter is shared through Redis)")
def test_two_processes_share_one_redis_schedule_and_never_exceed_the_rpm_together() -> None:
    rpm, count, interval = 300, 5, 0.2  # 5 slots each, one every 0.2 s between them
    prefix = f"openbench:test-rpm:{uuid.uuid4().hex}:"
    env = {**os.environ, "PYTHONPATH": str(BASE_DIR)}
    args = [sys.executable, "-c", _LIMITED_PROCESS, settings.REDIS_URL, prefix, str(rpm), str(count)]
    processes = [
        subprocess.Popen(args, cwd=BASE_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete(prefix + "shared")
    assert [process.returncode for process in processes] == [0, 0]
    per_process = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    starts = sorted((at, index) for index, times in enumerate(per_process) for at in times)
    times = [at for at, _ in starts]
    # Together they took 2·count slots of one schedule: alone, each would have finished in (count-1)·interval.
    assert times[-1] - times[0] >= (2 * count - 1) * interval - 0.1
    # No window holds more starts than the rate allows (a late wake-up may shorten one gap, never many).
    for k in (2, 4):
        assert all(times[i + k] - times[i] >= k * interval - 0.1 for i in range(len(times) - k)), times
    # The two really ran at the same time: their slots interleave instead of one waiting for the other.
    owners = [index for _, index in starts]
    assert owners[:count] != [owners[0]] * count, owners
