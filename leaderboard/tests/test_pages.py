"""Analytics pages: leaderboard, compare and model detail, all fed by leaderboard.selectors."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from leaderboard import selectors
from leaderboard.tests.conftest import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(owner):
    """Two models over four geography and two math tests: Atlas right on all, Borealis on half."""
    atlas = LLMModelFactory(name="atlas", display_name="Atlas")
    borealis = LLMModelFactory(name="borealis", display_name="Borealis")
    tests = [TestCaseFactory(created_by=owner, category="geography") for _ in range(4)]
    tests += [TestCaseFactory(created_by=owner, category="math", difficulty="hard") for _ in range(2)]
    for index, test_case in enumerate(tests):
        record(atlas, test_case, score=1.0, latency_ms=100 + index, days_ago=index)
        record(borealis, test_case, score=float(index % 2), latency_ms=300, days_ago=index)
    return atlas, borealis, tests


def test_the_leaderboard_ranks_models_with_their_intervals(client, scored):
    del scored  # the fixture records the results
    response = client.get(reverse("leaderboard:leaderboard"))
    assert response.status_code == 200
    entries = response.context["board"]["entries"]
    assert entries == selectors.leaderboard(scope=selectors.Scope())["entries"]  # the API's numbers, unchanged
    assert [e["model"]["display_name"] for e in entries] == ["Atlas", "Borealis"]
    page = response.content.decode()
    low, high = entries[1]["ci_low"], entries[1]["ci_high"]
    assert f"{low:.3f} – {high:.3f}" in page
    assert "<svg" in page and page.count("<circle") == 2


def test_the_leaderboard_filters_like_the_api(client, scored):
    response = client.get(reverse("leaderboard:leaderboard"), {"category": "math", "difficulty": "hard"})
    entries = response.context["board"]["entries"]
    assert [e["tests_evaluated"] for e in entries] == [2, 2]
    assert response.context["board"]["filters"]["category"] == "math"
    assert client.get(reverse("leaderboard:leaderboard"), {"min_tests": 7}).context["board"]["entries"] == []


def test_a_bad_leaderboard_filter_is_shown_in_place(client, scored):
    response = client.get(reverse("leaderboard:leaderboard"), {"timeframe": "5y", "min_tests": "-1"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert "greater than or equal to 0" in response.content.decode()


def test_private_and_pending_tests_never_reach_the_leaderboard(client, owner):
    model = LLMModelFactory(display_name="Atlas")
    record(model, TestCaseFactory(created_by=owner, is_public=False))
    record(model, TestCaseFactory(created_by=owner, status="pending"))
    response = client.get(reverse("leaderboard:leaderboard"))
    assert response.context["board"]["entries"] == []
    assert "No model has results" in response.content.decode()


def test_compare_needs_two_to_five_models_and_says_so_in_place(client, scored):
    atlas, _, _ = scored
    response = client.get(reverse("leaderboard:compare"), {"models": [str(atlas.pk)]})
    assert response.status_code == 400
    assert "Choose between 2 and 5 models to compare; you chose 1." in response.content.decode()
    assert response.context["result"] is None


def test_compare_shows_the_head_to_head_of_two_models(client, scored):
    atlas, borealis, tests = scored
    response = client.get(reverse("leaderboard:compare"), {"models": [str(atlas.pk), str(borealis.pk)]})
    assert response.status_code == 200
    result = response.context["result"]
    pair = result["pairwise"][0]
    assert (pair["a_wins"], pair["b_wins"], pair["ties"]) == (3, 0, 3)
    assert [row["category"] for row in response.context["by_category"]] == ["geography", "math"]
    assert response.context["by_category"][0]["cells"] == [1.0, 0.5]
    page = response.content.decode()
    assert "mcnemar_exact" in page
    assert reverse("catalog:test-detail", args=[tests[1].pk]) in page


def test_compare_takes_comma_separated_models_as_the_api_does(client, scored):
    atlas, borealis, _ = scored
    joined = client.get(reverse("leaderboard:compare"), {"models": f"{atlas.pk}, {borealis.pk}"})
    repeated = client.get(reverse("leaderboard:compare"), {"models": [str(atlas.pk), str(borealis.pk)]})
    assert joined.status_code == 200
    assert joined.context["result"] == repeated.context["result"]
    bad = client.get(reverse("leaderboard:compare"), {"models": f"{atlas.pk},not-a-model"})
    assert bad.status_code == 400
    assert "“not-a-model” is not a valid UUID." in bad.content.decode()


def test_the_compare_page_starts_with_an_empty_form(client, scored):
    response = client.get(reverse("leaderboard:compare"))
    assert response.status_code == 200
    assert response.context["result"] is None
    assert "Atlas" in response.content.decode()


def test_the_model_page_shows_categories_latency_and_trend_charts(client, scored):
    atlas, _, _ = scored
    response = client.get(reverse("leaderboard:model-detail", args=[atlas.pk]))
    assert response.status_code == 200
    performance = response.context["performance"]
    assert performance == selectors.model_performance(model=atlas, scope=selectors.Scope()) | {
        "generated_at": performance["generated_at"]
    }
    assert [row["category"] for row in performance["by_category"]] == ["geography", "math"]
    assert len(response.context["score_chart"]["lines"][0]["dots"]) == 6  # one point per day
    page = response.content.decode()
    assert page.count("<polyline") == 2
    assert "latency p50" in page


def test_the_model_page_filters_by_category(client, scored):
    atlas, _, _ = scored
    response = client.get(reverse("leaderboard:model-detail", args=[atlas.pk]), {"category": "math"})
    assert response.context["performance"]["overall"]["tests"] == 2


def test_the_model_page_lists_only_results_the_visitor_may_see(client, owner, other_user):
    model = LLMModelFactory(display_name="Atlas")
    record(model, TestCaseFactory(created_by=owner, title="Public question"))
    record(model, TestCaseFactory(created_by=owner, title="Secret question", status="pending", is_public=False))
    url = reverse("leaderboard:model-detail", args=[model.pk])
    client.force_login(other_user)
    page = client.get(url).content.decode()
    assert "Public question" in page and "Secret question" not in page
    client.force_login(owner)
    assert "Secret question" in client.get(url).content.decode()


def test_an_unknown_model_is_a_404(client):
    assert (
        client.get(reverse("leaderboard:model-detail", args=["00000000-0000-0000-0000-000000000000"])).status_code
        == 404
    )


def test_the_home_page_renders_for_everyone(client, owner, moderator, scored):
    for user in (None, owner, moderator):
        if user:
            client.force_login(user)
        response = client.get("/")
        assert response.status_code == 200
        assert reverse("leaderboard:model-detail", args=[scored[0].pk]) in response.content.decode()


def test_the_home_page_ranks_models_as_the_30_day_leaderboard_does(client, owner, scored):
    """A failed latest call counts as 0 there, and an older result does not count twice: the home page's
    top models show the leaderboard's numbers, not a plain mean over every result."""
    atlas, borealis, tests = scored
    record(borealis, tests[1], status="failed", latency_ms=None)  # its latest on this test: 1.0 -> failed
    record(atlas, TestCaseFactory(created_by=owner), score=1.0, days_ago=45)  # outside the 30 days
    response = client.get("/")
    board = selectors.leaderboard(scope=selectors.Scope(timeframe="30d"))["entries"]
    top = response.context["top_models"]
    assert top == board
    assert [(e["model"]["display_name"], e["tests_evaluated"]) for e in top] == [("Atlas", 6), ("Borealis", 6)]
    assert top[1]["score"] == pytest.approx(2 / 6)
    page = response.content.decode()
    assert f"{top[1]['score']:.3f}" in page
    assert f"{top[1]['ci_low']:.3f} – {top[1]['ci_high']:.3f}" in page
