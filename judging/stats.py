"""Agreement of a judge with human labels: accuracy, Cohen's kappa and its 95% interval (numbers only).

The judge's verdict (`TestResult.is_correct`) is the prediction, the moderator's label the truth:
tp = both say correct, fp = judge correct / label incorrect, fn = judge incorrect / label correct,
tn = both say incorrect.

kappa = (p_o - p_e) / (1 - p_e), with p_o = (tp + tn) / n and p_e the agreement expected by chance from
the two raters' marginals. The interval is kappa ± 1.96·SE with the large-sample standard error of
Fleiss, Cohen & Everitt (1969) (the non-null SE, valid for any kappa), clipped to [-1, 1]. With few labels
it is an approximation; it says how much to trust the kappa, not more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
KAPPA_CI_METHOD = "Fleiss-Cohen-Everitt 1969 large-sample standard error, kappa ± 1.96·SE"


@dataclass(frozen=True)
class Confusion:
    """Counts of (judge verdict, human label) pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


@dataclass(frozen=True)
class Agreement:
    """Accuracy, kappa and its interval; None where undefined (no labels; kappa when p_e = 1)."""

    confusion: Confusion
    accuracy: float | None
    kappa: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def labelled(self) -> int:
        return self.confusion.n

    @property
    def agree(self) -> int:
        return self.confusion.tp + self.confusion.tn


def agreement(confusion: Confusion) -> Agreement:
    """The agreement numbers of a confusion matrix."""
    n = confusion.n
    if n == 0:
        return Agreement(confusion, None, None, None, None)
    tp, fp, fn, tn = confusion.tp, confusion.fp, confusion.fn, confusion.tn
    accuracy = (tp + tn) / n
    # p_e = 1 exactly (both raters gave one and the same verdict to every item): kappa is 0/0. Decided in
    # integers, so no rounding hides it.
    if (tp + fp) * (tp + fn) + (fn + tn) * (fp + tn) == n * n:
        return Agreement(confusion, accuracy, None, None, None)
    judge_yes, judge_no = (tp + fp) / n, (fn + tn) / n  # row marginals (judge)
    label_yes, label_no = (tp + fn) / n, (fp + tn) / n  # column marginals (label)
    p_o = accuracy
    p_e = judge_yes * label_yes + judge_no * label_no
    kappa = (p_o - p_e) / (1 - p_e)
    se = _kappa_standard_error(
        cells={(1, 1): tp / n, (1, 0): fp / n, (0, 1): fn / n, (0, 0): tn / n},
        rows={1: judge_yes, 0: judge_no},
        cols={1: label_yes, 0: label_no},
        kappa=kappa,
        p_e=p_e,
        n=n,
    )
    low, high = max(-1.0, kappa - Z_95 * se), min(1.0, kappa + Z_95 * se)
    return Agreement(confusion, accuracy, kappa, low, high)


def _kappa_standard_error(
    *,
    cells: dict[tuple[int, int], float],
    rows: dict[int, float],
    cols: dict[int, float],
    kappa: float,
    p_e: float,
    n: int,
) -> float:
    """Fleiss, Cohen & Everitt (1969), eq. for var(kappa) when kappa is not assumed 0:

    [Σ_i p_ii (1 - (p_i. + p_.i)(1 - κ))² + (1 - κ)² Σ_{i≠j} p_ij (p_.i + p_j.)² - (κ - p_e(1 - κ))²] / (n (1 - p_e)²)
    """
    diagonal = sum(cells[(i, i)] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in rows)
    off = sum(cells[(i, j)] * (cols[i] + rows[j]) ** 2 for i in rows for j in cols if i != j)
    variance = (diagonal + (1 - kappa) ** 2 * off - (kappa - p_e * (1 - kappa)) ** 2) / (n * (1 - p_e) ** 2)
    return math.sqrt(max(variance, 0.0))  # rounding can leave a hair below 0 when the SE is 0
