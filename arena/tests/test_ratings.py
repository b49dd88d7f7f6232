"""Bradley–Terry ratings against an independent fit on fixed votes (SPEC §13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import ELO_MEAN, fit_ratings, fit_strengths, pair_outcomes
from arena.selectors import arena_ratings
from arena.tests.factories import models, new_test, seasoned_user, vote

# Fixed votes among four models (a, b, winner), with ties; model 3 never wins.
VOTES = [
    (0, 1, "a"), (0, 1, "a"), (1, 0, "b"), (0, 1, "tie"), (1, 0, "a"),
    (1, 2, "a"), (2, 1, "a"), (1, 2, "tie"), (1, 2, "a"),
    (2, 0, "tie"), (0, 2, "a"),
    (3, 0, "b"), (0, 3, "a"), (3, 1, "tie"), (2, 3, "a"), (3, 2, "b"), (1, 3, "a"),
]  # fmt: skip


def counted(votes):
    return [(a, b, w, 1) for a, b, w in votes]


def mm_fit(votes, n, iterations=20000):
    """Hunter's MM algorithm, in plain Python: the same model written another way.

    Strengths π; a tie is half a win of one game to each side; every model also played one game against
    a fixed opponent of strength 1 and won half of it (the prior arena.ratings documents)."""
    wins = [0.5] * n
    games = {}
    for a, b, winner in votes:
        key = (min(a, b), max(a, b))
        games[key] = games.get(key, 0) + 1
        if winner == "tie":
            wins[a] += 0.5
            wins[b] += 0.5
        else:
            wins[a if winner == "a" else b] += 1
    pi = [1.0] * n
    for _ in range(iterations):
        new = []
        for i in range(n):
            denominator = 1 / (pi[i] + 1)
            for (x, y), count in games.items():
                if i in (x, y):
                    other = y if i == x else x
                    denominator += count / (pi[i] + pi[other])
            new.append(wins[i] / denominator)
        done = max(abs(p - q) for p, q in zip(pi, new, strict=True)) < 1e-13
        pi = new
        if done:
            break
    thetas = [math.log(p) for p in pi]
    mean = sum(thetas) / n
    return [ELO_MEAN + 400 * math.log10(math.e) * (t - mean) for t in thetas]


def test_the_fit_matches_an_independent_mm_fit_with_ties_and_a_model_that_never_wins():
    fitted = fit_ratings(counted(VOTES), 4, rounds=50, seed=1)
    expected = mm_fit(VOTES, 4)
    assert fitted.ratings == pytest.approx(expected, abs=1e-4)
    assert float(np.mean(fitted.ratings)) == pytest.approx(1000.0)
    # The model that never wins is last, and finite.
    assert np.argmin(fitted.ratings) == 3 and np.isfinite(fitted.ratings).all()
    assert np.argmax(fitted.ratings) == 0


def test_two_models_match_a_brute_force_maximisation_of_the_likelihood():
    votes = [(0, 1, "a")] * 7 + [(0, 1, "b")] * 2 + [(1, 0, "tie")] * 3
    wins_0, wins_1 = 7 + 1.5, 2 + 1.5

    def log_likelihood(t0, t1):
        def log_sigma(x):
            return -np.logaddexp(0, -x)

        return (
            wins_0 * log_sigma(t0 - t1)
            + wins_1 * log_sigma(t1 - t0)
            + 0.5 * (log_sigma(t0) + log_sigma(-t0) + log_sigma(t1) + log_sigma(-t1))
        )

    coarse = np.linspace(-4, 4, 801)
    t0, t1 = np.meshgrid(coarse, coarse, indexing="ij")
    best = np.unravel_index(np.argmax(log_likelihood(t0, t1)), t0.shape)
    fine0 = np.linspace(coarse[best[0]] - 0.01, coarse[best[0]] + 0.01, 401)
    fine1 = np.linspace(coarse[best[1]] - 0.01, coarse[best[1]] + 0.01, 401)
    f0, f1 = np.meshgrid(fine0, fine1, indexing="ij")
    best = np.unravel_index(np.argmax(log_likelihood(f0, f1)), f0.shape)
    gap = f0[best] - f1[best]
    theta = fit_strengths(pair_outcomes(counted(votes)), 2)
    assert theta[0] - theta[1] == pytest.approx(gap, abs=1e-4)
    ratings = fit_ratings(counted(votes), 2, rounds=50, seed=1).ratings
    assert ratings[0] - ratings[1] == pytest.approx(400 * math.log10(math.e) * gap, abs=0.05)


def test_a_model_that_only_loses_stays_finite_however_many_losses():
    for losses in (1, 10, 1000):
        fitted = fit_ratings([(0, 1, "a", losses)], 2, rounds=50, seed=1)
        assert np.isfinite(fitted.ratings).all() and np.isfinite(fitted.ci_low).all()
        assert fitted.ratings[1] < 1000 < fitted.ratings[0]


def test_the_bootstrap_interval_holds_the_rating_and_is_repeatable():
    first = fit_ratings(counted(VOTES), 4, rounds=200, seed=7)
    again = fit_ratings(counted(VOTES), 4, rounds=200, seed=7)
    assert (first.ci_low == again.ci_low).all() and (first.ci_high == again.ci_high).all()
    assert (first.ci_low <= first.ratings + 1e-9).all() and (first.ratings <= first.ci_high + 1e-9).all()
    many = fit_ratings([(a, b, w, 20) for a, b, w in VOTES], 4, rounds=200, seed=7)
    # Twenty times the votes: the same ratings' strengths are surer, so the intervals narrow.
    assert ((many.ci_high - many.ci_low) < (first.ci_high - first.ci_low)).all()


def test_order_of_votes_and_position_do_not_matter():
    swapped = [(b, a, {"a": "b", "b": "a", "tie": "tie"}[w]) for a, b, w in reversed(VOTES)]
    assert fit_ratings(counted(swapped), 4, rounds=20, seed=1).ratings == pytest.approx(
        fit_ratings(counted(VOTES), 4, rounds=20, seed=1).ratings, abs=1e-6
    )


@pytest.mark.django_db
def test_the_ratings_answer_ranks_models_with_ranges_and_counts(settings):
    settings.ARENA_BOOTSTRAP_ROUNDS = 100
    test = new_test()
    ms = models(4)
    voter = seasoned_user("r@example.com")
    for a, b, winner in VOTES:
        vote(ms[a], ms[b], winner, test_case=test, user=voter)
    answer = arena_ratings(source="people")
    assert answer["votes"] == len(VOTES)
    entries = answer["entries"]
    expected = mm_fit(VOTES, 4)
    by_name = {e["model"]["name"]: e for e in entries}
    for i, model in enumerate(ms):
        assert by_name[model.name]["rating"] == pytest.approx(expected[i], abs=0.06)
    assert [e["rank"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["model"]["name"] == ms[0].name
    last = by_name[ms[3].name]
    assert (last["wins"], last["losses"], last["ties"], last["battles"]) == (0, 5, 1, 6)
    for e in entries:
        assert e["rank_upper"] <= e["rank"] <= e["rank_lower"]
        assert e["ci_low"] <= e["rating"] <= e["ci_high"]
    assert sum(e["battles"] for e in entries) == 2 * len(VOTES)
