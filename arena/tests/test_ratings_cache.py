"""The ratings under traffic: one refit at a time, at most every ARENA_REFIT_SECONDS, the previous answer
served meanwhile (marked stale), and a clear 503 while the very first answer is computed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

import arena.selectors as selectors
from arena.selectors import REFIT_LOCK_KEY, arena_cache_invalidate, cached_arena_ratings
from arena.tests.factories import models, new_test, seasoned_user, vote

RATINGS = "/api/v1/arena/ratings"


class Clock:
    """Stands in for the selectors' wall clock, so intervals are crossed without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(selectors, "_now", fake)
    return fake


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Bradley–Terry fit the cache asks for, by source."""
    calls: list[str] = []
    lock = threading.Lock()
    fit = selectors.arena_ratings

    def counted(*, source: str = "people") -> dict[str, Any]:
        with lock:
            calls.append(source)
        return fit(source=source)

    monkeypatch.setattr(selectors, "arena_ratings", counted)
    return calls


@pytest.fixture
def pair() -> Any:
    test = new_test()
    a, b = models(2)
    return test, a, b, seasoned_user("cache-voter@example.com")


def cast(pair: Any, winner: str = "a") -> None:
    """A vote as vote_cast leaves it once committed: stored, and the cached ratings made stale."""
    test, a, b, voter = pair
    vote(a, b, winner, test_case=test, user=voter)
    arena_cache_invalidate()


@pytest.mark.django_db
def test_readers_during_a_refit_get_the_previous_answer_marked_stale(pair, fits, settings, clock) -> None:
    settings.ARENA_REFIT_SECONDS = 0
    cast(pair)
    assert cached_arena_ratings()["votes"] == 1 and fits == ["people"]
    cast(pair)
    cache.add(REFIT_LOCK_KEY.format("people"), 1)  # another process is refitting
    served = cached_arena_ratings()
    assert (served["votes"], served["stale"]) == (1, True)
    assert fits == ["people"]
    cache.delete(REFIT_LOCK_KEY.format("people"))  # its refit ends
    assert (cached_arena_ratings()["votes"], cached_arena_ratings()["stale"]) == (2, False)
    assert fits == ["people", "people"]


@pytest.mark.django_db
def test_a_vote_shows_once_the_refit_interval_has_passed_and_not_before(pair, fits, settings, clock) -> None:
    settings.ARENA_REFIT_SECONDS = 30
    assert cached_arena_ratings()["votes"] == 0
    clock.now += 10
    cast(pair)
    for _ in range(3):
        answer = cached_arena_ratings()
        assert (answer["votes"], answer["stale"]) == (0, True)
    clock.now += 19.9
    assert cached_arena_ratings()["votes"] == 0
    clock.now += 0.1  # 30 s since the last fit was stored
    answer = cached_arena_ratings()
    assert (answer["votes"], answer["stale"]) == (1, False)
    assert len(fits) == 2
    assert cached_arena_ratings()["votes"] == 1 and len(fits) == 2  # current: no refit


@pytest.mark.django_db
def test_an_unchanged_answer_is_refitted_after_the_analytics_cache_time(pair, fits, settings, clock) -> None:
    """A renamed model still shows within ANALYTICS_CACHE_SECONDS, as before."""
    settings.ARENA_REFIT_SECONDS = 10
    settings.ANALYTICS_CACHE_SECONDS = 300
    cast(pair)
    cached_arena_ratings()
    clock.now += 299
    assert cached_arena_ratings()["stale"] is False and len(fits) == 1
    _, a, _, _ = pair
    a.display_name = "Renamed"
    a.save()
    clock.now += 1
    names = {e["model"]["display_name"] for e in cached_arena_ratings()["entries"]}
    assert "Renamed" in names and len(fits) == 2


@pytest.mark.django_db
def test_a_failed_refit_releases_the_lock(pair, monkeypatch, settings) -> None:
    settings.ARENA_REFIT_SECONDS = 0

    def broken(**kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("fit failed")

    fit = selectors.arena_ratings
    monkeypatch.setattr(selectors, "arena_ratings", broken)
    with pytest.raises(RuntimeError):
        cached_arena_ratings()
    assert cache.get(REFIT_LOCK_KEY.format("people")) is None
    monkeypatch.setattr(selectors, "arena_ratings", fit)
    assert cached_arena_ratings()["votes"] == 0


@pytest.mark.django_db
def test_while_the_first_answer_is_computed_elsewhere_the_api_says_503_and_the_page_says_so(
    pair, monkeypatch, client_for
) -> None:
    monkeypatch.setattr(selectors, "FIRST_ANSWER_WAIT_SECONDS", 0.2)
    cache.add(REFIT_LOCK_KEY.format("people"), 1)
    response = client_for(None).get(RATINGS)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "ratings_computing"
    page = Client().get("/arena/ratings/")
    assert page.status_code == 200
    assert "The ratings are being computed" in page.content.decode()
    # The other source has its own lock: its first answer is computed here.
    assert client_for(None).get(RATINGS + "?source=judge").status_code == 200


@pytest.mark.django_db
def test_a_reader_waiting_for_the_first_answer_gets_it_when_it_lands(pair, monkeypatch, settings) -> None:
    cast(pair)
    cache.add(REFIT_LOCK_KEY.format("people"), 1)
    answer = selectors.arena_ratings(source="people")
    generation = selectors.generation_current(selectors.ARENA_VERSION_KEY)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the holder stores its answer while the reader waits
        sleeps.append(seconds)
        if len(sleeps) == 3:
            stored = {"answer": answer, "generation": generation, "stored_at": 0}
            cache.set(selectors.RATINGS_KEY.format("people"), stored)

    monkeypatch.setattr(selectors.time, "sleep", sleep)
    served = cached_arena_ratings()
    assert (served["votes"], served["stale"], len(sleeps)) == (1, False, 3)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; threads need PostgreSQL")
def test_concurrent_readers_right_after_a_vote_cause_one_fit(pair, fits, settings) -> None:
    settings.ARENA_REFIT_SECONDS = 0
    cached_arena_ratings()
    cast(pair)
    barrier = threading.Barrier(8)
    seen: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def read() -> None:
        try:
            barrier.wait()
            answer = cached_arena_ratings()
            with lock:
                seen.append((answer["votes"], answer["stale"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(seen) == 8
    assert fits == ["people", "people"]  # the first answer, then one refit for eight readers
    assert set(seen) <= {(0, True), (1, False)} and (1, False) in seen
    after = cached_arena_ratings()
    assert (after["votes"], after["stale"], len(fits)) == (1, False, 2)
