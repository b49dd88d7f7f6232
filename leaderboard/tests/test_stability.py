"""GET /api/v1/models/{id}/stability (SPEC §12): pass@k and flaky tests over repeated runs, checked against an
independent computation (every draw of k samples enumerated)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

from accounts.models import User
from catalog.models import LLMModel, Suite, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from leaderboard.selectors import stability
from leaderboard.selectors.stability import model_stability, pass_at_k
from leaderboard.tests.test_samples import run
from openbench.tests.api import V1, assert_error, client_for, reset_throttles  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    """The share of all k-subsets of the samples holding at least one correct sample."""
    draws = list(combinations(range(len(outcomes)), k))
    return sum(any(outcomes[i] for i in draw) for draw in draws) / len(draws)


@pytest.mark.parametrize("n", range(1, 9))
def test_the_estimator_is_the_share_of_k_draws_with_a_correct_sample(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(outcomes, k), abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_the_estimator_refuses_what_it_cannot_estimate(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)


def sampled(
    model: LLMModel, test: TestCase, outcomes: list[bool | str], *, days_ago: float = 0, revision: int | None = None
) -> None:
    """An execution of `test` sampling `model` once per outcome: correct, incorrect, or a failed status."""
    scores: list[float | str] = [o if isinstance(o, str) else float(o) for o in outcomes]
    run(model, test, scores, days_ago=days_ago, revision=revision, announce=False)


@pytest.fixture
def fixed(owner: User) -> dict[str, Any]:
    """Three public tests with repeated runs, the latest of which count; older and single runs that do not."""
    model = LLMModelFactory()
    a, b, c = (TestCaseFactory(title=name, created_by=owner) for name in "ABC")
    sampled(model, a, [True] * 5, days_ago=5)  # older repeated run: replaced by the one below
    sampled(model, a, [True, False, True, False, "timeout"], days_ago=2)
    sampled(model, a, [True], days_ago=1)  # a later single run says nothing about stability
    sampled(model, b, [True, True, True, True], days_ago=1)
    sampled(model, c, [False, "failed", False], days_ago=1)
    sampled(LLMModelFactory(), c, [True, True, True])  # another model's
    expected = {a.pk: [True, False, True, False, False], b.pk: [True] * 4, c.pk: [False] * 3}
    return {"model": model, "tests": (a, b, c), "expected": expected}


def _independent(expected: dict[Any, list[bool]]) -> dict[str, Any]:
    k = min(len(outcomes) for outcomes in expected.values())
    return {
        "k": k,
        "pass_at_1": sum(brute_pass_at_k(o, 1) for o in expected.values()) / len(expected),
        "pass_at_k": sum(brute_pass_at_k(o, k) for o in expected.values()) / len(expected),
        "flaky": sum(1 for o in expected.values() if any(o) and not all(o)),
    }


def test_stability_of_fixed_data_matches_an_independent_computation(fixed: dict[str, Any]) -> None:
    body = client_for(None).get(f"{V1}/models/{fixed['model'].pk}/stability").json()
    truth = _independent(fixed["expected"])
    assert body["test_count"] == 3 and len(body["tests"]) == 3
    assert body["samples_per_test"] == truth["k"] == 3
    assert body["pass_at_1"] == pytest.approx(truth["pass_at_1"], abs=1e-6)
    assert set(body["pass_at_k"]) == {"1", "3"}
    assert body["pass_at_k"]["1"] == body["pass_at_1"]
    assert body["pass_at_k"]["3"] == pytest.approx(truth["pass_at_k"], abs=1e-6)
    assert (body["flaky_tests"], body["flaky_rate"]) == (truth["flaky"], pytest.approx(1 / 3, abs=1e-6))
    per_test = {row["test_id"]: row for row in body["tests"]}
    for test_id, outcomes in fixed["expected"].items():
        row = per_test[str(test_id)]
        assert (row["samples"], row["correct"]) == (len(outcomes), sum(outcomes))
        assert row["pass_at_k"]["3"] == pytest.approx(brute_pass_at_k(outcomes, 3), abs=1e-6)


def test_a_model_without_repeated_runs_has_no_stability_yet() -> None:
    model = LLMModelFactory()
    sampled(model, TestCaseFactory(), [True])
    body = client_for(None).get(f"{V1}/models/{model.pk}/stability").json()
    assert body == {
        "model": str(model.pk),
        "suite": None,
        "test_count": 0,
        "samples_per_test": None,
        "pass_at_1": None,
        "pass_at_k": {},
        "flaky_tests": 0,
        "flaky_rate": None,
        "tests": [],
    }


def test_samples_of_an_earlier_revision_do_not_count() -> None:
    model, test = LLMModelFactory(), TestCaseFactory(revision=2)
    sampled(model, test, [True, False], revision=1)
    assert model_stability(model=model, user=None)["test_count"] == 0


def test_visibility_is_the_tests_own(fixed: dict[str, Any], owner: User, other_user: User, moderator: User) -> None:
    model = fixed["model"]
    private = TestCaseFactory(created_by=owner, is_public=False)
    pending = TestCaseFactory(created_by=owner, status=TestCase.Status.PENDING)
    sampled(model, private, [True, False])
    sampled(model, pending, [False, False])
    url = f"{V1}/models/{model.pk}/stability"
    seen = {
        name: {row["test_id"] for row in client_for(user).get(url).json()["tests"]}
        for name, user in [("anonymous", None), ("stranger", other_user), ("owner", owner), ("moderator", moderator)]
    }
    public = {str(pk) for pk in fixed["expected"]}
    assert seen["anonymous"] == seen["stranger"] == public
    assert seen["owner"] == seen["moderator"] == public | {str(private.pk), str(pending.pk)}
    # The anonymous answer counts only what anonymous callers may see: k is that of the public tests.
    assert client_for(None).get(url).json()["samples_per_test"] == 3


def test_a_suite_narrows_the_tests(fixed: dict[str, Any]) -> None:
    a, b, _ = fixed["tests"]
    suite = Suite.objects.create(name="Two of three")
    suite.tests.set([a, b])
    body = client_for(None).get(f"{V1}/models/{fixed['model'].pk}/stability", {"suite": str(suite.pk)}).json()
    assert body["suite"] == str(suite.pk)
    assert {row["test_id"] for row in body["tests"]} == {str(a.pk), str(b.pk)}
    assert body["samples_per_test"] == 4
    truth = _independent({pk: o for pk, o in fixed["expected"].items() if pk in (a.pk, b.pk)})
    assert body["pass_at_k"]["4"] == pytest.approx(truth["pass_at_k"], abs=1e-6)


def test_unknown_models_and_suites_are_404_and_a_bad_suite_id_is_400(fixed: dict[str, Any]) -> None:
    client = client_for(None)
    model = fixed["model"]
    assert_error(client.get(f"{V1}/models/00000000-0000-0000-0000-000000000000/stability"), 404)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_error(client.get(f"{V1}/models/{model.pk}/stability", {"suite": unknown}), 404)
    error = assert_error(client.get(f"{V1}/models/{model.pk}/stability", {"suite": "nope"}), 400)
    assert list(error["details"]) == ["suite"]


def test_the_model_page_shows_pass_at_k_and_names_the_flaky_tests(client: Any, fixed: dict[str, Any]) -> None:
    html = client.get(f"/models/{fixed['model'].pk}/").content.decode()
    section = html[html.index('id="stability"') :]
    truth = _independent(fixed["expected"])
    assert f'data-stability="pass_at_1">{round(truth["pass_at_1"] * 100)}%' in section
    assert f'data-stability="pass_at_k">{round(truth["pass_at_k"] * 100)}%' in section
    assert "pass@3" in section
    assert 'data-stability="flaky_tests">1<' in section
    flaky = section[section.index('id="flaky-tests"') :]
    assert ">A</a>" in flaky and ">B</a>" not in flaky.split("</table>")[0]


def test_the_model_page_without_repeated_runs_says_so(client: Any) -> None:
    model = LLMModelFactory()
    html = client.get(f"/models/{model.pk}/").content.decode()
    assert "No test has been sampled more than once" in html


def test_anonymous_callers_share_a_cached_answer_until_the_models_results_change(
    client: Any, fixed: dict[str, Any], owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[Any] = []
    real = stability.model_stability

    def counting(**kwargs: Any) -> dict[str, Any]:
        computed.append(kwargs["user"])
        return real(**kwargs)

    monkeypatch.setattr(stability, "model_stability", counting)
    model = fixed["model"]
    for _ in range(2):
        assert client.get(f"/models/{model.pk}/").status_code == 200
        assert client_for(None).get(f"{V1}/models/{model.pk}/stability").status_code == 200
    assert len(computed) == 1  # one scan of the model's repeated results for every anonymous view

    run(model, TestCaseFactory(), [1.0, 0.0])  # new results bump the model's generation
    body = client_for(None).get(f"{V1}/models/{model.pk}/stability").json()
    assert len(computed) == 2 and body["test_count"] == 4

    # Signed in, one's own tests may count: computed for the caller each time.
    for _ in range(2):
        client_for(owner).get(f"{V1}/models/{model.pk}/stability")
    assert computed[2:] == [owner, owner]
