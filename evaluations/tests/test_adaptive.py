"""Adaptive concurrency per provider (SPEC §15): the limiter on its own, then the engine's calls against a
fake server that takes N calls at once and refuses the rest with 429, Retry-After and rate-limit headers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.test import Client

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.adaptive import AdaptiveLimiter, LearnedLimits, Outcome, limiter_for, reset_limiters
from evaluations.runner.calls import CallLimits, ProviderCaller
from evaluations.runner.run import run_executions
from evaluations.services import execution_start
from providers.base import GenerationRequest, RateLimitInfo
from providers.testing.fake_servers import FakeServer


def run(coroutine):
    return asyncio.run(coroutine)


# --- the limiter on its own ------------------------------------------------------------------------------


def test_a_burst_of_refusals_cuts_the_limit_once_to_the_calls_the_server_accepted() -> None:
    async def scenario() -> AdaptiveLimiter:
        limiter = AdaptiveLimiter("test", ceiling=50)
        slots = [await limiter.acquire() for _ in range(50)]
        # The server took 20 and refused 30: the refusals arrive while the 20 are still in flight.
        for slot in slots[20:]:
            limiter.record(slot, Outcome(refused=True))
            limiter.release(slot)
        return limiter

    limiter = run(scenario())
    assert limiter.allowed == 20
    assert limiter.in_flight == 20
    assert limiter.refusals == 30


def test_refusals_of_calls_started_after_a_cut_cut_again_those_started_before_do_not() -> None:
    async def scenario() -> list[int]:
        limiter = AdaptiveLimiter("test", ceiling=40, clock=itertools.count().__next__)
        slots = [await limiter.acquire() for _ in range(40)]
        seen = []
        for slot in slots[:2]:  # both started before the first cut
            limiter.record(slot, Outcome(refused=True))
            limiter.release(slot)
            seen.append(limiter.allowed)
        for slot in slots[2:13]:
            limiter.release(slot)
        late = await limiter.acquire()  # started after the cut
        limiter.record(late, Outcome(refused=True))
        seen.append(limiter.allowed)
        return seen

    assert run(scenario()) == [28, 28, 19]


def test_a_refusal_with_only_one_call_in_flight_leaves_one() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter("test", ceiling=40)
        slot = await limiter.acquire()
        limiter.record(slot, Outcome(refused=True))
        return limiter.allowed

    assert run(scenario()) == 1


def test_without_headers_successes_grow_the_limit_by_about_one_a_round() -> None:
    async def scenario() -> float:
        limiter = AdaptiveLimiter("test", ceiling=50)
        limiter.limit = 10.0
        for _ in range(10):  # one round at 10 in flight
            slot = await limiter.acquire()
            limiter.record(slot, Outcome(succeeded=True))
            limiter.release(slot)
        return limiter.limit

    assert run(scenario()) == pytest.approx(11.0, abs=0.1)


def test_headers_with_room_grow_the_limit_a_call_an_answer_but_not_past_the_request_limit() -> None:
    async def scenario() -> list[int]:
        limiter = AdaptiveLimiter("test", ceiling=50)
        limiter.limit = 10.0
        slot = await limiter.acquire()
        seen = []
        for _ in range(7):
            info = RateLimitInfo(limit_requests=15, remaining_requests=3)
            limiter.record(slot, Outcome(succeeded=True, rate_limit=info))
            seen.append(limiter.allowed)
        return seen

    assert run(scenario()) == [11, 12, 13, 14, 15, 15, 15]


def test_nothing_remaining_holds_the_limit_at_the_calls_in_flight() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter("test", ceiling=50)
        slots = [await limiter.acquire() for _ in range(12)]
        limiter.record(slots[0], Outcome(succeeded=True, rate_limit=RateLimitInfo(remaining_requests=0)))
        return limiter.allowed

    assert run(scenario()) == 12


def test_an_empty_token_budget_counts_like_no_requests_remaining() -> None:
    async def scenario() -> tuple[int, int]:
        limiter = AdaptiveLimiter("test", ceiling=50)
        slots = [await limiter.acquire() for _ in range(8)]
        limiter.limit = 10.0
        # 300 tokens remain and a call costs 100: room, so the limit grows a call.
        limiter.record(slots[0], Outcome(succeeded=True, rate_limit=RateLimitInfo(remaining_tokens=300), tokens=100))
        after_room = limiter.allowed
        # 50 remain: not one more call of 100 tokens fits.
        limiter.record(slots[0], Outcome(succeeded=True, rate_limit=RateLimitInfo(remaining_tokens=50), tokens=100))
        return after_room, limiter.allowed

    assert run(scenario()) == (11, 8)


def test_the_limit_never_exceeds_the_ceiling_however_much_room_is_reported() -> None:
    async def scenario() -> tuple[int, int]:
        limiter = AdaptiveLimiter("test", ceiling=5)
        in_flight = 0
        peak = 0

        async def call() -> None:
            nonlocal in_flight, peak
            async with limiter.slot() as slot:
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.001)
                limiter.record(slot, Outcome(succeeded=True, rate_limit=RateLimitInfo(remaining_requests=1000)))
                in_flight -= 1

        await asyncio.gather(*(call() for _ in range(200)))
        return peak, limiter.allowed

    peak, allowed = run(scenario())
    assert peak == 5
    assert allowed == 5


def test_a_cancelled_waiter_gives_its_place_and_no_slot_leaks() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter("test", ceiling=1)
        held = await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        limiter.release(held)  # would have gone to the cancelled waiter
        with pytest.raises(asyncio.CancelledError):
            await waiter
        async with asyncio.timeout(1):
            async with limiter.slot():
                pass
        return limiter.in_flight

    assert run(scenario()) == 0


def test_one_limiter_is_shared_by_threads_that_run_their_own_event_loops() -> None:
    limiter = limiter_for("shared-test", ceiling=3)
    peak = 0
    in_flight = 0
    lock = threading.Lock()

    async def calls() -> None:
        async def call() -> None:
            nonlocal peak, in_flight
            async with limiter_for("shared-test", ceiling=3).slot():
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                await asyncio.sleep(0.002)
                with lock:
                    in_flight -= 1

        await asyncio.gather(*(call() for _ in range(40)))

    threads = [threading.Thread(target=asyncio.run, args=(calls(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert peak == 3
    assert limiter.in_flight == 0
    assert limiter.max_in_flight == 3


class MemoryLearned(LearnedLimits):
    """LearnedLimits in a dict instead of Redis."""

    def __init__(self) -> None:
        super().__init__("")
        self.kept: dict[str, float] = {}
        self.writes = 0

    def recall(self, name: str) -> float | None:
        return self.kept.get(name)

    def remember(self, name: str, limit: float | None) -> None:
        self.writes += 1
        if limit is None:
            self.kept.pop(name, None)
        else:
            self.kept[name] = limit


def test_a_new_limiter_starts_from_what_an_earlier_one_learnt_and_a_limit_at_the_ceiling_is_not_kept() -> None:
    learned, now = MemoryLearned(), [0.0]

    async def refused(limiter: AdaptiveLimiter) -> None:
        slots = [await limiter.acquire() for _ in range(limiter.allowed)]
        for slot in slots[20:]:
            limiter.record(slot, Outcome(refused=True))
            limiter.release(slot)
        for slot in slots[:20]:
            limiter.release(slot)

    first = AdaptiveLimiter("p", ceiling=50, learned=learned, clock=lambda: now[0])
    run(refused(first))
    assert first.allowed == 20 and learned.writes == 1  # 30 refusals in one second: saved once
    first.save()  # the end of a run
    assert learned.kept == {"p": 20.0}
    second = AdaptiveLimiter("p", ceiling=50, learned=learned)
    assert second.allowed == 20
    assert AdaptiveLimiter("p", ceiling=10, learned=learned).allowed == 10  # never above its own ceiling
    assert AdaptiveLimiter("p", ceiling=50, adaptive=False, learned=learned).allowed == 50
    second.limit = 50.0  # grown back to the ceiling: nothing to teach the next one
    second.save()
    assert learned.kept == {}
    assert AdaptiveLimiter("p", ceiling=50, learned=learned).allowed == 50


def test_without_redis_a_learnt_limit_is_neither_read_nor_kept() -> None:
    broken = LearnedLimits("redis://127.0.0.1:1/0")
    limiter = AdaptiveLimiter("p", ceiling=50, learned=broken)
    assert limiter.allowed == 50
    limiter.limit = 20.0
    limiter.save()  # logged, not raised


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers: each read waits out its 1 s timeout."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        yield f"redis://127.0.0.1:{listening.getsockname()[1]}/0"


def test_a_hanging_redis_holds_no_call_of_the_loop_while_a_limiter_reads_or_keeps_its_limit(silent_redis) -> None:
    reset_limiters(learned=False)
    limits = dataclasses.replace(call_limits(), redis_url=silent_redis)
    caller = ProviderCaller(limits=limits, is_stopped=lambda _: False, is_cancelled=lambda _: False)

    async def longest_stall() -> float:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        slots = await caller._slots("openai_compatible")  # reads the learnt limit: 1 s, beside the loop
        slots.limit = 20.0
        slots.save()  # and keeps it: another 1 s, in the loop's executor
        await asyncio.sleep(1.2)
        task.cancel()
        return max(later - earlier for earlier, later in itertools.pairwise(ticks))

    stall = asyncio.run(longest_stall())
    reset_limiters(learned=False)
    assert stall < 0.5  # each 1 s Redis wait held on the loop would stop the ticker for 1 s


def test_a_call_stopped_while_its_providers_limiter_is_made_leaves_the_others_their_limiter(silent_redis) -> None:
    reset_limiters(learned=False)
    limits = dataclasses.replace(call_limits(), redis_url=silent_redis)
    caller = ProviderCaller(limits=limits, is_stopped=lambda _: False, is_cancelled=lambda _: False)

    async def three_calls_one_stopped() -> list:
        calls = [asyncio.ensure_future(caller._slots("openai_compatible")) for _ in range(3)]
        await asyncio.sleep(0.1)  # all three wait for the limiter (1 s: Redis does not answer)
        calls[0].cancel()  # its execution was cancelled
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(three_calls_one_stopped())
    reset_limiters(learned=False)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert outcomes[1] is outcomes[2] and outcomes[1].name == "openai_compatible"


def test_saves_on_the_loop_keep_the_latest_limit_however_slow_redis_is() -> None:
    learned = MemoryLearned()
    remember = learned.remember

    def slow(name: str, limit: float | None) -> None:
        time.sleep(0.2 if limit == 40.0 else 0)  # the first write is slow: the later ones must not land before it
        remember(name, limit)

    learned.remember = slow  # type: ignore[method-assign]
    limiter = AdaptiveLimiter("p", ceiling=50, learned=learned)

    async def changes() -> None:
        for limit in (40.0, 30.0, 20.0):
            limiter.limit = limit
            limiter.save()  # the end of a run saves last
            await asyncio.sleep(0.01)

    asyncio.run(changes())  # the runner waits for the loop's executor before it closes
    assert learned.kept == {"p": 20.0} and learned.writes <= 3


def test_the_process_has_one_limiter_per_provider_and_a_new_ceiling_restarts_it() -> None:
    first = limiter_for("openai_compatible", ceiling=50)
    first.limit = 20.0
    assert limiter_for("openai_compatible", ceiling=50) is first
    assert limiter_for("openai_compatible", ceiling=50).allowed == 20
    assert limiter_for("anthropic", ceiling=50) is not first
    assert limiter_for("openai_compatible", ceiling=30).allowed == 30


# --- against a server that takes 20 calls at once --------------------------------------------------------


def call_limits(concurrency: int = 50) -> CallLimits:
    return CallLimits(
        concurrency=concurrency,
        provider_concurrency={"openai_compatible": concurrency},
        provider_rpm={},
        max_attempts=6,
        backoff_base=0.02,
        backoff_max=0.2,
        breaker_threshold=1000,
        breaker_cooldown=30.0,
        redis_url="",
    )


def call_many(model, count: int, *, concurrency: int = 50) -> list:
    async def calls() -> list:
        caller = ProviderCaller(
            limits=call_limits(concurrency), is_stopped=lambda _: False, is_cancelled=lambda _: False
        )
        try:
            request = GenerationRequest(model_id=model.provider_model_id, prompt="Capital of France?", timeout=10)
            return await asyncio.gather(*(caller.call(model, request) for _ in range(count)))
        finally:
            await caller.aclose()

    return asyncio.run(calls())


@pytest.fixture
def limited_server():
    with FakeServer("openai", default_answer="Paris", latency_ms=30, max_concurrent=20, retry_after=0.05) as fake:
        yield fake


def compatible_model(server: FakeServer):
    return LLMModelFactory(
        provider="openai_compatible", provider_model_id="fake-model-1", config={"base_url": server.base_url}
    )


@pytest.mark.django_db
def test_configured_for_50_against_a_server_that_takes_20_the_limit_settles_at_20_with_few_refusals(limited_server):
    model = compatible_model(limited_server)
    outcomes = call_many(model, 1000)  # the bench's 50 x 20
    assert all(outcome.response is not None for outcome in outcomes)
    refused = limited_server.outcomes["rate_limit"]
    assert refused / limited_server.request_count <= 0.05
    limiter = limiter_for("openai_compatible", ceiling=50)
    assert 18 <= limiter.allowed <= 20
    assert limited_server.max_in_flight == 20  # the server was used fully
    assert limiter.max_in_flight <= 50


@pytest.mark.django_db
def test_the_limit_grows_back_when_the_server_takes_more_and_stays_under_the_ceiling(limited_server):
    model = compatible_model(limited_server)
    call_many(model, 300)
    limiter = limiter_for("openai_compatible", ceiling=50)
    assert limiter.allowed <= 20
    limited_server.configure(max_concurrent=40)
    limited_server.reset()
    call_many(model, 600)
    assert limiter.allowed >= 36
    assert limited_server.max_in_flight > 30
    limited_server.configure(max_concurrent=None)
    call_many(model, 600)
    assert limiter.allowed == 50
    assert limiter.max_in_flight <= 50
    assert limited_server.max_in_flight <= 50


@pytest.mark.django_db
def test_without_rate_limit_headers_429s_alone_keep_refusals_low(limited_server):
    limited_server.configure(rate_limit_headers=False)
    model = compatible_model(limited_server)
    outcomes = call_many(model, 600)
    assert all(outcome.response is not None for outcome in outcomes)
    assert limited_server.outcomes["rate_limit"] / limited_server.request_count <= 0.08
    assert limiter_for("openai_compatible", ceiling=50).allowed <= 21


@pytest.fixture
def engine_models(limited_server, settings) -> list:
    """The engine configured for 50 at once with quick retries, and 40 models on the limited server."""
    settings.EVAL_CONCURRENCY = 50
    settings.PROVIDER_CONCURRENCY = {**settings.PROVIDER_CONCURRENCY, "openai_compatible": 50}
    settings.EVAL_BACKOFF_BASE_SECONDS = 0.02
    settings.EVAL_BACKOFF_MAX_SECONDS = 0.2
    settings.EVAL_MAX_ATTEMPTS = 6
    settings.EVAL_CACHE = False
    return [
        LLMModelFactory(
            provider="openai_compatible",
            provider_model_id=f"fake-model-{i}",
            config={"base_url": limited_server.base_url},
        )
        for i in range(40)
    ]


@pytest.mark.django_db
def test_runs_of_one_worker_share_what_the_limiter_learnt(owner, limited_server, engine_models):
    models = engine_models
    first = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([first.pk])
    refused_in_first = limited_server.outcomes["rate_limit"]
    assert refused_in_first > 0  # it started at 50
    limited_server.reset()
    second = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([second.pk])
    # The second run starts where the first left off: at the server's 20.
    assert limited_server.outcomes["rate_limit"] == 0
    for execution in (first, second):
        execution.refresh_from_db()
        assert execution.status == Execution.Status.COMPLETED
        assert TestResult.objects.filter(execution=execution, status=TestResult.Status.COMPLETED).count() == 40


@pytest.mark.django_db
@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL (the learnt limit is kept there)")
def test_a_job_in_a_new_process_starts_from_the_limit_an_earlier_job_learnt(
    owner, limited_server, engine_models, settings
):
    models = engine_models
    first = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([first.pk])
    assert limited_server.outcomes["rate_limit"] > 0  # it started at 50
    learnt = limiter_for("openai_compatible", ceiling=50).allowed
    reset_limiters(learned=False)  # as a new rq work horse: no limiter in this process, Redis kept
    limited_server.reset()
    second = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    run_executions([second.pk])
    assert limited_server.outcomes["rate_limit"] == 0
    assert limited_server.max_in_flight <= learnt <= 20
    second.refresh_from_db()
    assert second.status == Execution.Status.COMPLETED
    reset_limiters()  # and a reset forgets it
    assert limiter_for("openai_compatible", ceiling=50, redis_url=settings.REDIS_URL).allowed == 50


@pytest.mark.django_db
def test_the_current_limit_per_provider_is_exported_at_metrics(limited_server, settings):
    settings.METRICS_TOKEN = ""
    call_many(compatible_model(limited_server), 200)
    allowed = limiter_for("openai_compatible", ceiling=50).allowed
    body = Client().get("/metrics").content.decode()
    assert f'openbench_provider_concurrency_limit{{provider="openai_compatible"}} {float(allowed)}' in body
