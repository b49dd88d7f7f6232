"""run_pairwise: a judge model votes through its provider adapter (a fake OpenAI-compatible server)."""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from arena.models import Battle, Vote
from arena.pairwise import combine
from arena.selectors import arena_ratings
from arena.tests.factories import answer, models, new_test
from catalog.tests.factories import LLMModelFactory
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db
ANSWERS = re.compile(r"## Answer A\n(.*?)\n\n## Answer B\n(.*?)\n\nWhich answer", re.S)


def prefers_paris(model: str, prompt: str) -> str:
    """A fair judge: the answer that says Paris wins, wherever it stands."""
    first, second = ANSWERS.search(prompt).groups()
    winner = "a" if "Paris" in first and "Paris" not in second else "b" if "Paris" in second else "tie"
    return json.dumps({"winner": winner, "reasoning": "Paris is the capital."})


def always_first(model: str, prompt: str) -> str:
    """A judge that likes whatever it reads first."""
    return json.dumps({"winner": "a", "reasoning": "The first one."})


@pytest.fixture
def contest() -> Any:
    tests = [new_test(title=f"Capital {i}") for i in range(2)]
    right, wrong = models(2, prefix="contestant")
    for test in tests:
        answer(right, test, "Paris")
        answer(wrong, test, "Lyon")
    return tests, right, wrong


def judge_on(server: FakeServer, name: str = "fair-judge") -> Any:
    return LLMModelFactory(name=name, provider="openai_compatible", config={"base_url": server.base_url})


def test_each_pair_is_judged_in_both_orders_and_the_votes_count_apart(contest: Any) -> None:
    tests, right, _ = contest
    with FakeServer("openai", answer_fn=prefers_paris) as server:
        judge = judge_on(server)
        answer(judge, tests[0], "Paris")  # the judge's own answer is never judged by itself
        out = StringIO()
        call_command("run_pairwise", "--judge", judge.name, stdout=out)
        assert server.request_count == 4  # two tests × one pair × both orders
        prompts = [r.body["messages"][-1]["content"] for r in server.generation_requests]
    assert "judged 2 pair(s)" in out.getvalue()
    votes = list(Vote.objects.all())
    assert len(votes) == 2 and {v.voter_kind for v in votes} == {"judge"}
    for v in votes:
        assert v.judge_model_id == judge.pk and v.user_id is None
        winner_model = v.model_a_id if v.winner == "a" else v.model_b_id
        assert winner_model == right.pk
        assert v.details["agreed"] is True
    # Both orders were asked: each answer appeared first once per test.
    firsts = [ANSWERS.search(p).group(1) for p in prompts]
    assert sorted(firsts) == ["Lyon", "Lyon", "Paris", "Paris"]
    assert arena_ratings(source="people")["votes"] == 0
    judged = arena_ratings(source="judge")
    assert judged["votes"] == 2 and judged["entries"][0]["model"]["id"] == str(right.pk)
    assert str(judge.pk) not in json.dumps(judged, default=str)


def test_a_judge_that_follows_the_position_gives_ties(contest: Any) -> None:
    with FakeServer("openai", answer_fn=always_first) as server:
        judge = judge_on(server, "biased-judge")
        out = StringIO()
        call_command("run_pairwise", "--judge", judge.name, "--limit", "1", stdout=out)
        assert server.request_count == 2
    assert "1 tie(s) because the two orders disagreed" in out.getvalue()
    assert Vote.objects.get().winner == "tie"


def test_pairs_already_judged_are_not_judged_again(contest: Any) -> None:
    tests, _, _ = contest
    with FakeServer("openai", answer_fn=prefers_paris) as server:
        judge = judge_on(server)
        call_command("run_pairwise", "--judge", judge.name, "--tests", str(tests[0].pk), stdout=StringIO())
        out = StringIO()
        call_command("run_pairwise", "--judge", judge.name, "--tests", str(tests[0].pk), stdout=out)
        assert server.request_count == 2
    assert "Nothing to judge" in out.getvalue()
    assert Vote.objects.count() == 1


def test_a_failing_judge_stores_nothing_and_says_why(contest: Any) -> None:
    with FakeServer("openai", default_answer="I cannot decide.") as server:
        judge = judge_on(server, "vague-judge")
        out = StringIO()
        call_command("run_pairwise", "--judge", judge.name, stdout=out)
    assert "judged 0 pair(s)" in out.getvalue() and "2 failed" in out.getvalue()
    assert "no verdict" in out.getvalue()
    assert not Vote.objects.exists() and not Battle.objects.exists()


def test_bad_arguments_are_refused(contest: Any) -> None:
    _, right, _ = contest
    with pytest.raises(CommandError, match="No model named"):
        call_command("run_pairwise", "--judge", "nobody")
    with pytest.raises(CommandError, match="UUIDs"):
        call_command("run_pairwise", "--judge", right.name, "--tests", "nope")
    with pytest.raises(CommandError, match="--limit"):
        call_command("run_pairwise", "--judge", right.name, "--limit", "0")
    private = new_test(is_public=False)
    with pytest.raises(CommandError, match="Not approved public tests"):
        call_command("run_pairwise", "--judge", right.name, "--tests", str(private.pk))


@pytest.mark.parametrize(
    ("in_order", "swapped", "vote"),
    [
        ("a", "b", "a"),
        ("b", "a", "b"),
        ("tie", "tie", "tie"),
        ("a", "a", "tie"),
        ("b", "b", "tie"),
        ("a", "tie", "tie"),
    ],
)
def test_combining_the_two_orders(in_order: str, swapped: str, vote: str) -> None:
    assert combine(in_order, swapped) == vote
