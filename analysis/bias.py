"""Position bias: how often the video shown on the left is chosen.

Left chosen = answer "a" when A was shown left, or "b" when B was. Ties and judgments whose
sides are unknown are excluded (and counted). The test is scipy's exact two-sided binomial
test against 0.5, vectorised: for p = 0.5 the distribution is symmetric, so
``binomtest(k, n).pvalue == min(1, 2·P(X ≤ min(k, n − k)))``; the 95 % interval is
Clopper–Pearson, as ``binomtest(...).proportion_ci(method="exact")``. Both are checked against
``scipy.stats.binomtest`` in tests/analysis.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.coding import TIE, A, B, QuestionData, label_order

TEST = "exact two-sided binomial test against 0.5 (scipy.stats.binomtest); ties and unknown sides excluded"


def binomial_test_half(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided p-value against 0.5 and the 95 % Clopper–Pearson interval, elementwise (n ≥ 1)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(k, n - k), n, 0.5))
    p = np.where(2 * k == n, 1.0, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, stats.beta.ppf(0.025, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(0.975, k + 1, n - k), 1.0)
    return p, low, high


def _row(k: float, n: float) -> dict:
    if n <= 0:
        return {"n": 0, "left_chosen": 0, "p_left": None, "ci_low": None, "ci_high": None, "p_value": None,
                "reason": "not enough data: no non-tie judgment with known sides"}
    p, low, high = (float(x[0]) for x in binomial_test_half(np.array([k]), np.array([n])))
    return {"n": int(n), "left_chosen": int(k), "p_left": float(k / n), "ci_low": low, "ci_high": high,
            "p_value": p, "reason": None}


def position_bias(q: QuestionData, raters: np.ndarray) -> dict:
    """P(left chosen) overall and per rater for one question (JSON-ready)."""
    known = q.left_is_a >= 0
    decisive = q.answer != TIE
    use = known & decisive
    left = ((q.answer == A) & (q.left_is_a == 1)) | ((q.answer == B) & (q.left_is_a == 0))
    out = {"test": TEST, "n_ties_excluded": int((known & ~decisive).sum()),
           "n_side_unknown": int((~known).sum()), "overall": _row(float(left[use].sum()), float(use.sum()))}
    n_r = np.bincount(q.rater[use], minlength=len(raters))
    k_r = np.bincount(q.rater[use], weights=left[use], minlength=len(raters))
    rated = np.array([r for r in label_order(raters) if n_r[r] > 0], dtype=np.int64)
    per_rater = []
    if rated.size:
        p, low, high = binomial_test_half(k_r[rated], n_r[rated])
        for j, r in enumerate(rated):
            per_rater.append({"rater": raters[r], "n": int(n_r[r]), "left_chosen": int(k_r[r]),
                              "p_left": float(k_r[r] / n_r[r]), "ci_low": float(low[j]), "ci_high": float(high[j]),
                              "p_value": float(p[j]), "reason": None})
    out["per_rater"] = per_rater
    return out
