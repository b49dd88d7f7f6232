"""Arena pages without JavaScript: the battle, the form vote, the reveal, the ratings and the links to them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from arena.models import Battle, Vote
from arena.tests.factories import answer, models, new_test, seasoned_user, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def battle_ready() -> Any:
    test = new_test(title="Page battle", prompt="Say hello.")
    a, b = models(2, prefix="page-model")
    answer(a, test, "Hello there!")
    answer(b, test, "Hi.")
    return test, a, b


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_shows_a_battle_and_nothing_that_names_its_models(battle_ready: Any) -> None:
    _, a, b = battle_ready
    client = logged_in(seasoned_user("page@example.com"))
    body = client.get("/arena/").content.decode()
    assert "Say hello." in body and "Hello there!" in body and "Hi." in body
    for model in (a, b):
        for identifying in (str(model.pk), model.name, model.display_name):
            assert identifying not in body
    assert "<script>" not in body and "onclick" not in body  # CSP: scripts only from files
    assert "js/arena-keys.js" in body


def test_a_reload_shows_the_same_open_battle(battle_ready: Any) -> None:
    client = logged_in(seasoned_user("page@example.com"))
    client.get("/arena/")
    client.get("/arena/")
    assert Battle.objects.count() == 1


def test_voting_with_the_form_reveals_the_models(
    battle_ready: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.ARENA_REFIT_SECONDS = 0  # the interval has its own tests (test_ratings_cache)
    _, a, b = battle_ready
    client = logged_in(seasoned_user("page@example.com"))
    client.get("/arena/")
    battle = Battle.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/arena/battles/{battle.pk}/vote", {"winner": "tie"})
    assert response.status_code == 302 and response["Location"] == f"/arena/battles/{battle.pk}/"
    revealed = client.get(response["Location"]).content.decode()
    assert a.display_name in revealed and b.display_name in revealed
    assert "A tie" in revealed
    assert Vote.objects.get().winner == "tie"
    # The next visit serves a new battle; the ratings on the page count the vote.
    page = client.get("/arena/").content.decode()
    assert Battle.objects.count() == 2
    assert "over 1 vote " in page


def test_the_reveal_is_for_the_voter_only_and_only_after_the_vote(battle_ready: Any) -> None:
    client = logged_in(seasoned_user("page@example.com"))
    client.get("/arena/")
    battle = Battle.objects.get()
    assert client.get(f"/arena/battles/{battle.pk}/")["Location"] == "/arena/"
    stranger = logged_in(seasoned_user("stranger@example.com"))
    assert stranger.get(f"/arena/battles/{battle.pk}/").status_code == 404
    assert stranger.post(f"/arena/battles/{battle.pk}/vote", {"winner": "a"}).status_code == 404
    assert not Vote.objects.exists()


def test_a_bad_choice_or_a_fresh_account_is_told_why(battle_ready: Any, settings: Any) -> None:
    from accounts.tests.factories import UserFactory

    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 24
    fresh = UserFactory(email="fresh@example.com")
    client = logged_in(fresh)
    page = client.get("/arena/").content.decode()
    assert "at least 24 hours old" in page and "disabled" in page
    battle = Battle.objects.get()
    response = client.post(f"/arena/battles/{battle.pk}/vote", {"winner": "a"}, follow=True)
    assert "at least 24 hours old" in response.content.decode()
    response = client.post(f"/arena/battles/{battle.pk}/vote", {"winner": "z"}, follow=True)
    assert "Choose A, B or a tie." in response.content.decode()
    assert not Vote.objects.exists()


def test_visitors_are_asked_to_log_in_and_see_the_ratings(battle_ready: Any) -> None:
    test, a, b = battle_ready
    vote(a, b, "a", test_case=test, user=seasoned_user("v@example.com"))
    body = Client().get("/arena/").content.decode()
    assert "Log in" in body and a.display_name in body
    assert not Battle.objects.filter(status=Battle.Status.OPEN).exists()


def test_the_ratings_page_keeps_judges_apart(battle_ready: Any) -> None:
    test, a, b = battle_ready
    judge = models(1, prefix="judge")[0]
    vote(a, b, "b", test_case=test, kind="judge", judge=judge)
    people = Client().get("/arena/ratings/").content.decode()
    judges = Client().get("/arena/ratings/?source=judge").content.decode()
    assert "No votes yet." in people
    assert a.display_name in judges and "over 1 vote " in judges


def test_the_leaderboard_and_the_nav_link_to_the_arena() -> None:
    body = Client().get("/leaderboard/").content.decode()
    assert 'href="/arena/ratings/"' in body and 'href="/arena/"' in body
