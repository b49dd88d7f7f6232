"""Kappa, its interval and the confusion matrix against the formulas written out here, independently of
judging/stats.py: from the raw (judge, label) pairs, with the 2×2 table built by counting."""

from __future__ import annotations

import math

import pytest

from judging.stats import Z_95, Confusion, agreement


def pairs_from(tp: int, fp: int, fn: int, tn: int) -> list[tuple[bool, bool]]:
    """(judge says correct, label says correct) for each labelled result."""
    return [(True, True)] * tp + [(True, False)] * fp + [(False, True)] * fn + [(False, False)] * tn


def reference(pairs: list[tuple[bool, bool]]) -> tuple[float, float, float]:
    """Cohen's kappa and the Fleiss-Cohen-Everitt (1969) 95% interval, from the pairs."""
    n = len(pairs)
    categories = (True, False)
    p = {(a, b): sum(1 for pair in pairs if pair == (a, b)) / n for a in categories for b in categories}
    row = {a: sum(p[(a, b)] for b in categories) for a in categories}  # the judge's marginals
    col = {b: sum(p[(a, b)] for a in categories) for b in categories}  # the labels' marginals
    p_o = sum(p[(c, c)] for c in categories)
    p_e = sum(row[c] * col[c] for c in categories)
    kappa = (p_o - p_e) / (1 - p_e)
    term_1 = sum(p[(c, c)] * (1 - (row[c] + col[c]) * (1 - kappa)) ** 2 for c in categories)
    term_2 = (1 - kappa) ** 2 * sum(
        p[(a, b)] * (col[a] + row[b]) ** 2 for a in categories for b in categories if a != b
    )
    term_3 = (kappa - p_e * (1 - kappa)) ** 2
    se = math.sqrt((term_1 + term_2 - term_3) / (n * (1 - p_e) ** 2))
    return kappa, max(-1.0, kappa - 1.959964 * se), min(1.0, kappa + 1.959964 * se)


@pytest.mark.parametrize(
    "cells",
    [
        (20, 5, 10, 15),
        (45, 15, 25, 15),
        (3, 1, 0, 2),
        (0, 7, 9, 0),  # never agreeing: kappa below 0
        (88, 3, 4, 5),
        (1, 0, 0, 1),  # perfect agreement: kappa 1, SE 0
    ],
)
def test_kappa_and_its_interval_match_the_formulas(cells: tuple[int, int, int, int]) -> None:
    tp, _, _, tn = cells
    pairs = pairs_from(*cells)
    confusion = Confusion(
        tp=sum(1 for judge, label in pairs if judge and label),
        fp=sum(1 for judge, label in pairs if judge and not label),
        fn=sum(1 for judge, label in pairs if not judge and label),
        tn=sum(1 for judge, label in pairs if not judge and not label),
    )
    assert (confusion.tp, confusion.fp, confusion.fn, confusion.tn) == cells
    numbers = agreement(confusion)
    kappa, low, high = reference(pairs)
    assert numbers.labelled == len(pairs)
    assert numbers.agree == tp + tn
    assert numbers.accuracy == pytest.approx((tp + tn) / len(pairs))
    assert numbers.kappa == pytest.approx(kappa, abs=1e-12)
    assert numbers.ci_low == pytest.approx(low, abs=1e-5)
    assert numbers.ci_high == pytest.approx(high, abs=1e-5)
    assert numbers.ci_low <= numbers.kappa <= numbers.ci_high


def test_a_worked_example() -> None:
    # 50 labels: p_o = 35/50 = 0.7; judge says correct 25/50, labels 30/50, so p_e = .5·.6 + .5·.4 = 0.5
    # and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    numbers = agreement(Confusion(tp=20, fp=5, fn=10, tn=15))
    assert numbers.kappa == pytest.approx(0.4)
    assert numbers.accuracy == pytest.approx(0.7)
    assert pytest.approx(1.959964, abs=1e-6) == Z_95


def test_no_labels_give_zeros_and_nulls() -> None:
    numbers = agreement(Confusion())
    assert (numbers.labelled, numbers.agree) == (0, 0)
    assert (numbers.accuracy, numbers.kappa, numbers.ci_low, numbers.ci_high) == (None, None, None, None)


@pytest.mark.parametrize("cells", [(5, 0, 0, 0), (0, 0, 0, 3)])
def test_kappa_is_undefined_when_chance_agreement_is_one(cells: tuple[int, int, int, int]) -> None:
    numbers = agreement(Confusion(*cells))
    assert numbers.accuracy == 1.0
    assert (numbers.kappa, numbers.ci_low, numbers.ci_high) == (None, None, None)


def test_one_rater_constant_gives_kappa_zero() -> None:
    # The judge always says correct, the labels vary: p_o = p_e, kappa 0 (defined, since p_e < 1).
    numbers = agreement(Confusion(tp=6, fp=4, fn=0, tn=0))
    assert numbers.kappa == pytest.approx(0.0)
    assert numbers.accuracy == pytest.approx(0.6)
