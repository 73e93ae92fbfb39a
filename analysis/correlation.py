"""Kendall τ-b and Spearman ρ exactly as scipy.stats computes them, for large samples, fast.

scipy's ``kendalltau``/``spearmanr`` sort their inputs on every call. Alignment asks for the
same metric difference on every question, so x is sorted once per metric and each question's
subset keeps that order (a stable filter, O(n)). The other variable — the human preference
score or a pair's agreement — takes few distinct values, so concordant minus discordant pairs
is a sum over its L levels of cumulative counts: O(n·L), no sort at all.

Both reproduce scipy's statistic and p-value: τ-b with scipy's asymptotic normal p-value and
tie corrections (what ``method="auto"`` uses whenever there are ties), ρ as the Pearson
correlation of average ranks with scipy's Student-t p-value. Small samples (where scipy may use
exact p-values) and variables with many levels are handed to scipy itself. tests/analysis
checks equality with scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

MAX_LEVELS = 64
MIN_FAST = 500


def sorted_subset(order: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """The indices ``members`` (into an array of length n) in the order given by ``order``."""
    keep = np.zeros(n, dtype=bool)
    keep[members] = True
    return order[keep[order]]


def _levels(y: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Dense ascending level codes of y without sorting it (hash, then sort the few uniques)."""
    codes, uniques = pd.factorize(y, sort=False)
    if uniques.size > MAX_LEVELS:
        return None
    rank = np.empty(uniques.size, dtype=np.int64)
    rank[np.argsort(np.asarray(uniques))] = np.arange(uniques.size)
    return rank[codes], int(uniques.size)


def _tie_stats(counts: np.ndarray) -> tuple[int, int, int]:
    """scipy's count_rank_tie on group sizes."""
    cnt = counts[counts > 1].astype(np.int64)
    return (int((cnt * (cnt - 1) // 2).sum()), int((cnt * (cnt - 1.0) * (cnt - 2)).sum()),
            int((cnt * (cnt - 1.0) * (2 * cnt + 5)).sum()))


def _x_groups(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    new = np.empty(xs.size, dtype=bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, xs.size))
    return group, starts, sizes


def kendall_tau_b_sorted(xs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """τ-b and two-sided p-value for x already sorted ascending (``y`` aligned with it).

    NaN statistic when either variable is constant, as in scipy.
    """
    n = xs.size
    levels = _levels(y) if n >= MIN_FAST else None
    if levels is None:
        res = stats.kendalltau(xs, y)
        return float(res.statistic), float(res.pvalue)
    code, n_levels = levels
    group, starts, sizes = _x_groups(xs)
    smaller = starts[group]  # per element: how many have a strictly smaller x
    con_minus_dis = 0
    running = np.zeros(n + 1, dtype=np.int64)
    for level in range(n_levels):
        np.cumsum(code == level, out=running[1:])  # running[k]: elements of this level among the first k
        # +1 for each element above this level, −1 below: concordant minus discordant with this level
        con_minus_dis += int(running[smaller] @ np.sign(code - level))
    xtie, x0, x1 = _tie_stats(sizes)
    ytie, y0, y1 = _tie_stats(np.bincount(code, minlength=n_levels))
    tot = n * (n - 1) // 2
    if xtie == tot or ytie == tot:
        return float("nan"), float("nan")
    if xtie == 0 and ytie == 0:  # scipy may use its exact p-value here
        res = stats.kendalltau(xs, y)
        return float(res.statistic), float(res.pvalue)
    tau = min(1.0, max(-1.0, con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)))
    m = n * (n - 1.0)
    var = (m * (2 * n + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (n - 2))
    p = 2 * special.ndtr(-abs(con_minus_dis / np.sqrt(var)))
    return float(tau), float(p)


def spearman_sorted(xs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman ρ and two-sided p-value for x already sorted ascending (``y`` aligned with it)."""
    n = xs.size
    levels = _levels(y) if n >= MIN_FAST else None
    if levels is None:
        res = stats.spearmanr(xs, y)
        return float(res.statistic), float(res.pvalue)
    code, n_levels = levels
    group, starts, sizes = _x_groups(xs)
    rank_x = (starts + (sizes + 1) / 2.0)[group]
    counts = np.bincount(code, minlength=n_levels)
    rank_y = (np.cumsum(counts) - counts + (counts + 1) / 2.0)[code]
    rs = np.float64(np.corrcoef(rank_x, rank_y)[1, 0])
    dof = n - 2
    with np.errstate(divide="ignore"):
        t = rs * np.sqrt(np.clip(dof / ((rs + 1.0) * (1.0 - rs)), 0, None))
    return float(rs), float(2 * special.stdtr(dof, -abs(t)))
