"""Bradley–Terry ratings from pairwise votes, by maximum likelihood, with bootstrap intervals (numpy/scipy).

Model: P(i beats j) = 1 / (1 + exp(θj − θi)). A tie counts as half a win to each side. Every model also
plays one virtual tie against a fixed opponent of strength 0 (half a win, half a loss): a weak prior
that keeps the likelihood strictly concave, so the maximum exists and is unique even when a model never
wins or never loses (its θ stays finite instead of running off to −∞), and that pins the otherwise free
location. Ratings are then put on the Elo scale: 1000 + 400·log10(e)·(θi − mean θ), mean rating 1000.

The 95% interval is the percentile bootstrap over votes: votes are drawn with replacement (as a
multinomial over the distinct (a, b, outcome) triples, which is the same thing and cheaper), the model is
refitted each time, and the 2.5 and 97.5 percentiles of each model's rating are taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scipy is imported inside the fit, not here: this module is imported by the admin (and so by every
# process that sets Django up, rq workers included), and scipy costs ~0.4 s and ~10 MB to import.

ELO_SCALE = 400 / math.log(10)  # natural-log strength → Elo points
ELO_MEAN = 1000.0
PRIOR_TIES = 1.0  # virtual ties per model against the fixed opponent of strength 0


@dataclass(frozen=True)
class PairOutcomes:
    """Votes as distinct (a, b) index pairs with how often a won, b won, or they tied."""

    a: np.ndarray
    b: np.ndarray
    a_wins: np.ndarray
    b_wins: np.ndarray
    ties: np.ndarray


def pair_outcomes(votes: Sequence[tuple[int, int, str, int]]) -> PairOutcomes:
    """Group vote counts (index of model A, index of model B, winner "a" | "b" | "tie", how many) by
    unordered pair."""
    table: dict[tuple[int, int], list[float]] = {}
    for a, b, winner, count in votes:
        low, high = (a, b) if a < b else (b, a)
        row = table.setdefault((low, high), [0.0, 0.0, 0.0])
        if winner == "tie":
            row[2] += count
        elif (winner == "a") == (a == low):
            row[0] += count
        else:
            row[1] += count
    keys = list(table)
    values = np.asarray([table[k] for k in keys], dtype=np.float64).reshape(-1, 3)
    return PairOutcomes(
        a=np.asarray([k[0] for k in keys], dtype=np.int64),
        b=np.asarray([k[1] for k in keys], dtype=np.int64),
        a_wins=values[:, 0],
        b_wins=values[:, 1],
        ties=values[:, 2],
    )


def _negative_log_likelihood(
    theta: np.ndarray, a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray
) -> tuple[float, np.ndarray]:
    """The penalised negative log-likelihood and its gradient, pair counts given as weights."""
    from scipy.special import expit

    diff = theta[a] - theta[b]
    # log σ(x) = −log(1 + e^(−x)), computed stably with logaddexp.
    nll = float(wa @ np.logaddexp(0.0, -diff) + wb @ np.logaddexp(0.0, diff))
    nll += PRIOR_TIES * 0.5 * float(np.logaddexp(0.0, -theta).sum() + np.logaddexp(0.0, theta).sum())
    p = expit(diff)  # P(a beats b)
    residual = wa - (wa + wb) * p  # ∂ log L / ∂θa per pair
    grad = np.zeros_like(theta)
    np.add.at(grad, a, -residual)
    np.add.at(grad, b, residual)
    grad += PRIOR_TIES * (expit(theta) - 0.5)  # −∂/∂θ of the virtual tie, 0.5·log σ(θ) + 0.5·log σ(−θ)
    return nll, grad


def _hessian(theta: np.ndarray, a: np.ndarray, b: np.ndarray, games: np.ndarray) -> np.ndarray:
    """The Hessian of the negative log-likelihood (positive definite: the virtual ties add to its diagonal)."""
    from scipy.special import expit

    p = expit(theta[a] - theta[b])
    h = games * p * (1 - p)
    n = len(theta)
    hessian = np.zeros((n, n))
    np.add.at(hessian, (a, a), h)
    np.add.at(hessian, (b, b), h)
    np.add.at(hessian, (a, b), -h)
    np.add.at(hessian, (b, a), -h)
    q = expit(theta)
    hessian[np.diag_indices(n)] += PRIOR_TIES * q * (1 - q)
    return hessian


def fit_strengths(
    outcomes: PairOutcomes, n_models: int, *, start: np.ndarray | None = None, tol: float = 1e-12
) -> np.ndarray:
    """θ (natural-log strengths) maximising the penalised Bradley–Terry likelihood.

    Newton's method with a backtracking line search: the objective is strictly convex, so it converges
    from any start, in a handful of steps (a bootstrap refits hundreds of times; scipy.optimize.minimize
    spends most of its time in its own overhead on problems this small).
    """
    from scipy.linalg import solve

    wa = outcomes.a_wins + 0.5 * outcomes.ties
    wb = outcomes.b_wins + 0.5 * outcomes.ties
    games = wa + wb
    theta = np.zeros(n_models) if start is None else np.array(start, dtype=np.float64)
    value, grad = _negative_log_likelihood(theta, outcomes.a, outcomes.b, wa, wb)
    for _ in range(100):
        step = solve(_hessian(theta, outcomes.a, outcomes.b, games), grad, assume_a="pos")
        decrement = float(grad @ step)  # the Newton decrement squared: twice the expected gain
        if decrement < tol:
            break
        t = 1.0
        while t > 1e-6:
            candidate = theta - t * step
            new_value, new_grad = _negative_log_likelihood(candidate, outcomes.a, outcomes.b, wa, wb)
            if new_value <= value - 0.25 * t * decrement:
                break
            t /= 2
        theta, value, grad = candidate, new_value, new_grad
    return theta


def elo_scale(theta: np.ndarray) -> np.ndarray:
    """Strengths as Elo-style ratings with mean 1000."""
    return ELO_MEAN + ELO_SCALE * (theta - theta.mean())


def bootstrap_intervals(
    outcomes: PairOutcomes, n_models: int, *, rounds: int, seed: int, start: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap over votes of every model's rating: (lows, highs) on the Elo scale."""
    wa, wb, ties = outcomes.a_wins, outcomes.b_wins, outcomes.ties
    counts = np.concatenate([wa, wb, ties])
    total = int(counts.sum())
    k = len(wa)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, counts / total, size=rounds).astype(np.float64)
    ratings = np.empty((rounds, n_models))
    for r in range(rounds):
        sample = PairOutcomes(outcomes.a, outcomes.b, draws[r, :k], draws[r, k : 2 * k], draws[r, 2 * k :])
        ratings[r] = elo_scale(fit_strengths(sample, n_models, start=start))
    alpha = (1 - level) / 2
    lows, highs = np.percentile(ratings, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return lows, highs


@dataclass(frozen=True)
class Fitted:
    """Ratings on the Elo scale with the bounds of their 95% bootstrap intervals, by model index."""

    ratings: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def fit_ratings(votes: Sequence[tuple[int, int, str, int]], n_models: int, *, rounds: int, seed: int) -> Fitted:
    """Ratings and 95% bootstrap intervals of `n_models` models from vote counts given by model indices
    (a, b, winner, count)."""
    if not votes:
        flat = np.full(n_models, ELO_MEAN)
        return Fitted(flat, flat.copy(), flat.copy())
    outcomes = pair_outcomes(votes)
    theta = fit_strengths(outcomes, n_models)
    lows, highs = bootstrap_intervals(outcomes, n_models, rounds=rounds, seed=seed, start=theta)
    return Fitted(elo_scale(theta), lows, highs)
