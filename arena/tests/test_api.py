"""The arena API: battles, votes and voiding, with their bad inputs (SPEC §13)."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from arena.models import Battle, Vote
from arena.services import OPEN_BATTLE_REUSE
from arena.tests.factories import answer, models, new_test, seasoned_user, vote
from catalog.models import TestCase
from evaluations.models import TestResult

pytestmark = pytest.mark.django_db

BATTLES = "/api/v1/arena/battles"


def vote_url(battle_id: object) -> str:
    return f"/api/v1/arena/battles/{battle_id}/vote"


@pytest.fixture
def voter():
    return seasoned_user("voter@example.com")


@pytest.fixture
def arena_test():
    """One approved test answered by two models, plus a failed answer by a third."""
    test = new_test(title="Arena capital", prompt="Name the capital of France.")
    a, b, c = models(3)
    answer(a, test, "Paris, of course.")
    answer(b, test, "It is Paris.")
    answer(c, test, "", status=TestResult.Status.FAILED)
    return test, (a, b, c)


def test_a_battle_shows_two_different_answers_and_nothing_that_names_a_model(client_for, voter, arena_test):
    test, (a, b, c) = arena_test
    response = client_for(voter).post(BATTLES, {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "test", "answer_a", "answer_b"}
    assert body["test"] == {"id": str(test.pk), "title": "Arena capital", "prompt": "Name the capital of France."}
    assert {body["answer_a"], body["answer_b"]} == {"Paris, of course.", "It is Paris."}
    raw = response.content.decode()
    for model in (a, b, c):
        for identifying in (str(model.pk), model.name, model.display_name, model.provider_model_id):
            assert identifying not in raw
    results = TestResult.objects.filter(test_case=test)
    for result in results:
        assert str(result.pk) not in raw
    assert "4321" not in raw  # the answers' latency
    assert "latency" not in raw and "model" not in raw


def test_a_battle_on_a_chosen_test_uses_each_models_latest_successful_answer(client_for, voter):
    test = new_test()
    a, b = models(2)
    answer(a, test, "old answer of a")
    answer(a, test, "new answer of a")
    answer(b, test, "answer of b")
    body = client_for(voter).post(BATTLES, {"test_id": str(test.pk)}, format="json").json()
    assert {body["answer_a"], body["answer_b"]} == {"new answer of a", "answer of b"}


def test_bad_unknown_and_invisible_tests(client_for, voter, other_user, arena_test):
    client = client_for(voter)
    bad = client.post(BATTLES, {"test_id": "not-a-uuid"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    assert "test_id" in bad.json()["error"]["details"]
    assert client.post(BATTLES, {"test_id": str(uuid.uuid4())}, format="json").status_code == 404
    private = new_test(is_public=False, created_by=other_user)
    assert client.post(BATTLES, {"test_id": str(private.pk)}, format="json").status_code == 404
    assert client.post(BATTLES, {"test_id": str(private.pk)}, format="json").json()["error"]["code"] == "not_found"


def test_a_test_that_cannot_battle_is_a_conflict_that_says_why(client_for, voter):
    client = client_for(voter)
    own_pending = new_test(status=TestCase.Status.PENDING, created_by=voter)
    response = client.post(BATTLES, {"test_id": str(own_pending.pk)}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_in_arena"
    lonely = new_test()
    (only,) = models(1, prefix="lonely")
    answer(only, lonely, "alone")
    response = client.post(BATTLES, {"test_id": str(lonely.pk)}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_enough_answers"
    assert "two models" in response.json()["error"]["message"]


def test_without_any_answered_pair_there_is_no_battle(client_for, voter):
    response = client_for(voter).post(BATTLES, {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_enough_answers"


def draw_battle(client) -> dict:
    """A new battle, then left behind (served over an hour ago), so that the next request draws another."""
    response = client.post(BATTLES, {}, format="json")
    assert response.status_code == 201, response.content
    Battle.objects.filter(pk=response.json()["id"]).update(created_at=timezone.now() - OPEN_BATTLE_REUSE)
    return response.json()


def test_battles_need_a_signed_in_user(anonymous, arena_test):
    assert anonymous.post(BATTLES, {}, format="json").status_code == 401


def test_positions_are_balanced_per_pair(client_for, voter, arena_test):
    _, (a, b, _) = arena_test
    client = client_for(voter)
    firsts = Counter()
    for _ in range(10):
        battle_id = draw_battle(client)["id"]
        firsts[Battle.objects.get(pk=battle_id).model_a_id] += 1
    assert firsts == Counter({a.pk: 5, b.pk: 5})


def test_the_least_voted_pair_comes_first(client_for, voter):
    test = new_test()
    a, b, c = models(3)
    for model in (a, b, c):
        answer(model, test, f"answer of {model.name}")
    someone = seasoned_user("someone@example.com")
    for winner in ("a", "b"):
        vote(a, b, winner, test_case=test, user=someone)
        vote(a, c, winner, test_case=test, user=someone)
    for _ in range(5):
        battle = Battle.objects.get(pk=draw_battle(client_for(voter))["id"])
        assert {battle.model_a_id, battle.model_b_id} == {b.pk, c.pk}


def test_the_least_voted_test_of_a_pair_comes_first(client_for, voter):
    a, b = models(2)
    voted, fresh = new_test(title="voted"), new_test(title="fresh")
    for test in (voted, fresh):
        answer(a, test, "A says")
        answer(b, test, "B says")
    vote(a, b, "a", test_case=voted, user=seasoned_user("someone@example.com"))
    for _ in range(3):
        assert draw_battle(client_for(voter))["test"]["title"] == "fresh"


def test_a_vote_reveals_the_models_and_counts_once(client_for, voter, arena_test):
    client = client_for(voter)
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    battle = Battle.objects.get(pk=battle_id)
    response = client.post(vote_url(battle_id), {"winner": "a"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["winner"] == "a"
    assert body["model_a"]["id"] == str(battle.model_a_id)
    assert body["model_b"]["name"] == battle.model_b.name
    again = client.post(vote_url(battle_id), {"winner": "b"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_voted"
    assert Vote.objects.filter(battle=battle).count() == 1
    battle.refresh_from_db()
    assert battle.status == Battle.Status.DECIDED


@pytest.mark.parametrize("body", [{"winner": "c"}, {"winner": ""}, {}, {"winner": ["a"]}])
def test_a_bad_winner_is_a_400_naming_winner(client_for, voter, arena_test, body):
    client = client_for(voter)
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    response = client.post(vote_url(battle_id), body, format="json")
    assert response.status_code == 400
    assert "winner" in response.json()["error"]["details"]
    assert not Vote.objects.exists()


def test_unknown_and_other_peoples_battles_are_404(client_for, voter, arena_test):
    assert client_for(voter).post(vote_url(uuid.uuid4()), {"winner": "a"}, format="json").status_code == 404
    assert client_for(voter).post("/api/v1/arena/battles/nope/vote", {"winner": "a"}, format="json").status_code == 404
    stranger = seasoned_user("stranger@example.com")
    battle_id = client_for(stranger).post(BATTLES, {}, format="json").json()["id"]
    response = client_for(voter).post(vote_url(battle_id), {"winner": "a"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Vote.objects.exists()


def test_a_voided_battle_is_a_conflict(client_for, voter, moderator, arena_test):
    client = client_for(voter)
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    client_for(moderator).post(f"/api/v1/arena/users/{voter.pk}/void-votes", {}, format="json")
    response = client.post(vote_url(battle_id), {"winner": "tie"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "battle_voided"


def test_a_new_account_may_not_vote_and_is_told_why(client_for, arena_test, settings):
    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 24
    settings.ARENA_MIN_APPROVED_TESTS = 1
    fresh = UserFactory(email="fresh@example.com")
    client = client_for(fresh)
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    response = client.post(vote_url(battle_id), {"winner": "a"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "vote_not_allowed"
    assert "24 hours" in response.json()["error"]["message"]
    assert not Vote.objects.exists()
    new_test(created_by=fresh)  # an approved test of theirs opens the other way in
    assert client.post(vote_url(battle_id), {"winner": "a"}, format="json").status_code == 201


def test_moderators_vote_from_a_new_account(client_for, moderator, arena_test):
    client = client_for(moderator)
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    assert client.post(vote_url(battle_id), {"winner": "b"}, format="json").status_code == 201


def test_votes_and_battles_are_throttled(client_for, voter, arena_test, settings):
    settings.ARENA_VOTE_RATE = "2/min"
    settings.ARENA_BATTLE_RATE = "3/min"
    client = client_for(voter)
    ids = [draw_battle(client)["id"] for _ in range(3)]
    throttled = client.post(BATTLES, {}, format="json")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "throttled"
    Battle.objects.filter(pk__in=ids).update(created_at=timezone.now())  # still open: votable
    assert [client.post(vote_url(i), {"winner": "a"}, format="json").status_code for i in ids] == [201, 201, 429]


def test_a_moderator_voids_a_users_votes_and_they_leave_the_ratings(
    client_for, voter, moderator, arena_test, django_capture_on_commit_callbacks, settings
):
    settings.ARENA_REFIT_SECONDS = 0  # the interval has its own tests (test_ratings_cache)
    test, (a, b, _) = arena_test
    for _ in range(3):
        vote(a, b, "a", test_case=test, user=voter)
    ratings = client_for(None).get("/api/v1/arena/ratings").json()
    assert ratings["votes"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(moderator).post(
            f"/api/v1/arena/users/{voter.pk}/void-votes", {"reason": "one person, many accounts"}, format="json"
        )
    assert response.status_code == 200
    assert response.json() == {"votes_voided": 3, "open_battles_voided": 0}
    assert Vote.objects.filter(voided=True, voided_by=moderator, void_reason="one person, many accounts").count() == 3
    after = client_for(None).get("/api/v1/arena/ratings").json()
    assert after["votes"] == 0 and after["entries"] == []


def test_only_moderators_void_votes(client_for, voter, other_user):
    url = f"/api/v1/arena/users/{voter.pk}/void-votes"
    assert client_for(other_user).post(url, {}, format="json").status_code == 403
    assert client_for(None).post(url, {}, format="json").status_code == 401


def test_voiding_an_unknown_user_is_404(client_for, moderator):
    response = client_for(moderator).post(f"/api/v1/arena/users/{uuid.uuid4()}/void-votes", {}, format="json")
    assert response.status_code == 404


def test_ratings_follow_votes_through_the_cache(
    client_for, voter, arena_test, django_capture_on_commit_callbacks, settings
):
    settings.ARENA_REFIT_SECONDS = 0  # the interval has its own tests (test_ratings_cache)
    client = client_for(voter)
    assert client.get("/api/v1/arena/ratings").json()["votes"] == 0
    battle_id = client.post(BATTLES, {}, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(vote_url(battle_id), {"winner": "tie"}, format="json")
    body = client.get("/api/v1/arena/ratings").json()
    assert body["votes"] == 1 and body["stale"] is False
    assert [e["ties"] for e in body["entries"]] == [1, 1]
    assert {
        "rank",
        "rank_upper",
        "rank_lower",
        "model",
        "rating",
        "ci_low",
        "ci_high",
        "battles",
        "wins",
        "losses",
        "ties",
    } == set(body["entries"][0])


def test_ratings_keep_judges_apart(client_for, arena_test):
    test, (a, b, judge) = arena_test
    vote(a, b, "a", test_case=test, user=seasoned_user("p@example.com"))
    vote(a, b, "b", test_case=test, kind="judge", judge=judge)
    vote(a, b, "b", test_case=test, kind="judge", judge=judge)
    people = client_for(None).get("/api/v1/arena/ratings").json()
    judges = client_for(None).get("/api/v1/arena/ratings?source=judge").json()
    assert people["votes"] == 1 and judges["votes"] == 2
    assert people["entries"][0]["model"]["id"] == str(a.pk)
    assert judges["entries"][0]["model"]["id"] == str(b.pk)
    bad = client_for(None).get("/api/v1/arena/ratings?source=robots")
    assert bad.status_code == 400 and "source" in bad.json()["error"]["details"]


def test_an_open_battle_is_served_again_until_it_is_voted_on(client_for, voter, arena_test):
    test, _ = arena_test
    client = client_for(voter)
    first = client.post(BATTLES, {}, format="json")
    assert first.status_code == 201
    again = client.post(BATTLES, {}, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert client.post(BATTLES, {"test_id": str(test.pk)}, format="json").json()["id"] == first.json()["id"]
    other = new_test(title="another")
    refused = client.post(BATTLES, {"test_id": str(other.pk)}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "battle_open"
    assert Battle.objects.filter(user=voter).count() == 1
    assert client.post(vote_url(first.json()["id"]), {"winner": "tie"}, format="json").status_code == 201
    assert client.post(BATTLES, {}, format="json").status_code == 201
