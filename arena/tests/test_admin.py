"""Arena in the admin: moderators see battles and votes and void votes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from arena.models import Battle, Vote
from arena.tests.factories import models, new_test, seasoned_user, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator_client(client: Client, moderator: Any) -> Client:
    """pytest-django's client, logged in as the moderator persona."""
    client.force_login(moderator)
    return client


def test_moderators_list_battles_and_votes(moderator_client: Client) -> None:
    a, b = models(2)
    vote(a, b, "a", test_case=new_test(title="Listed test"), user=seasoned_user("v@example.com"))
    assert moderator_client.get(reverse("admin:arena_battle_changelist")).status_code == 200
    page = moderator_client.get(reverse("admin:arena_vote_changelist"))
    assert page.status_code == 200
    assert "v@example.com" in page.content.decode()


def test_voiding_from_the_admin_keeps_the_vote_and_records_who(moderator_client: Client, moderator: Any) -> None:
    a, b = models(2)
    test = new_test()
    voter, bystander = seasoned_user("v@example.com"), seasoned_user("b@example.com")
    first = vote(a, b, "a", test_case=test, user=voter)
    vote(a, b, "b", test_case=test, user=voter)
    kept = vote(a, b, "tie", test_case=test, user=bystander)
    url = reverse("admin:arena_vote_changelist")
    response = moderator_client.post(url, {"action": "void_all_of_their_voters", "_selected_action": [first.pk]})
    assert response.status_code == 302
    assert set(Vote.objects.filter(voided=True).values_list("user__email", flat=True)) == {"v@example.com"}
    assert Vote.objects.filter(voided=True, voided_by=moderator).count() == 2
    assert Battle.objects.filter(status=Battle.Status.VOIDED).count() == 2
    kept.refresh_from_db()
    assert not kept.voided
    moderator_client.post(url, {"action": "void_selected", "_selected_action": [kept.pk]})
    kept.refresh_from_db()
    assert kept.voided and kept.void_reason == "Voided in the admin."


def test_plain_users_cannot_open_the_arena_admin(other_user: Any) -> None:
    client = Client()
    client.force_login(other_user)
    assert client.get(reverse("admin:arena_vote_changelist")).status_code == 302
