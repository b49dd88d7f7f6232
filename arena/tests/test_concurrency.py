"""One vote per battle under concurrent requests (PostgreSQL: SQLite serialises writers anyway)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from arena.models import Battle, Vote
from arena.tests.factories import answer, models, new_test, seasoned_user, vote


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; threads need PostgreSQL")
def test_concurrent_votes_on_one_battle_record_one_and_refuse_the_rest() -> None:
    test = new_test()
    a, b = models(2)
    answer(a, test, "one")
    answer(b, test, "two")
    voter = seasoned_user("racer@example.com")
    client = APIClient()
    client.force_authenticate(voter)
    battle_id = client.post("/api/v1/arena/battles", {}, format="json").json()["id"]
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def cast(winner: str) -> None:
        try:
            mine = APIClient()
            mine.force_authenticate(voter)
            barrier.wait()
            response = mine.post(f"/api/v1/arena/battles/{battle_id}/vote", {"winner": winner}, format="json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=cast, args=(w,)) for w in ["a", "b", "tie", "a", "b", "tie", "a", "b"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201] + [409] * 7
    assert Vote.objects.filter(battle_id=battle_id).count() == 1
    assert Battle.objects.get(pk=battle_id).status == Battle.Status.DECIDED


@pytest.mark.django_db
def test_the_database_refuses_a_second_vote_on_a_battle() -> None:
    a, b = models(2)
    first = vote(a, b, "a", test_case=new_test(), user=seasoned_user("v@example.com"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(
            battle=first.battle, user=first.user, winner="b", model_a=a, model_b=b, test_case=first.test_case
        )
