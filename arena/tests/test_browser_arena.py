"""Vote in the arena with the keyboard in a real browser (Chromium through Playwright)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from arena.models import Battle, Vote
from arena.tests.factories import answer, models, new_test, seasoned_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_keys_vote_reveal_the_models_and_bring_the_next_battle(live_server: Any, page: Any) -> None:
    test = new_test(title="Keyboard battle", prompt="Greet me.")
    a, b, c = models(3, prefix="keys")
    for model, text in ((a, "Hello!"), (b, "Good day."), (c, "Hey.")):
        answer(model, test, text)
    user = seasoned_user("keys@example.com")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_server.url}/login/?next=/arena/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Keyboard battle")).to_be_visible()
    first = Battle.objects.get()
    assert first.model_a.display_name not in page.content()

    # The keys work once arena-keys.js has run: the heading can show before the script has loaded, and a key
    # pressed in between does nothing (as for a person, who would press it again).
    page.wait_for_load_state("load")
    page.keyboard.press("b")
    expect(page.get_by_role("heading", name="You chose B")).to_be_visible()
    expect(page.locator("#model-b")).to_have_text(first.model_b.display_name)
    page.wait_for_load_state("load")
    vote = Vote.objects.get()
    assert (vote.battle_id, vote.winner, vote.user_id) == (first.pk, "b", user.pk)

    page.keyboard.press("n")
    expect(page.get_by_role("heading", name="Keyboard battle")).to_be_visible()
    expect(page.locator("#arena-vote")).to_be_visible()
    page.wait_for_load_state("load")
    page.keyboard.press("t")
    expect(page.get_by_role("heading", name="A tie")).to_be_visible()
    assert sorted(Vote.objects.values_list("winner", flat=True)) == ["b", "tie"]
    assert Battle.objects.count() == 2
    assert not [e for e in errors if "Content Security Policy" in e]
