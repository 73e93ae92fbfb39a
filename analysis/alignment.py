"""Metric–human alignment (STATS.md): pairwise accuracy, Kendall τ-b, generator-level Spearman,
and agreement vs metric.

Δm = m(A) − m(B) (metrics where lower is better were negated by :mod:`analysis.scores`). The
metric's verdict is A when Δm > t, B when Δm < −t and a tie when |Δm| ≤ t. Pairwise accuracy is
over pairs whose human majority is decided: a human preference is matched only by the same
verdict (a metric tie against a human preference is wrong — HPSv2's convention), a human tie
only by a metric tie. τ-b uses the same pairs, against the human preference score
(share preferring A − share preferring B).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.coding import TIE, A, B
from analysis.correlation import kendall_tau_b_sorted, sorted_subset, spearman_sorted


def _none(reason: str, n: int, **extra: object) -> dict:
    return {"value": None, "reason": reason, "n": int(n), **extra}


def metric_verdict(delta: np.ndarray, tie_threshold: float = 0.0) -> np.ndarray:
    """Category the metric picks per pair: 0 = A, 1 = tie, 2 = B."""
    return np.where(delta > tie_threshold, A, np.where(delta < -tie_threshold, B, TIE))


def pairwise_accuracy(delta: np.ndarray, human: np.ndarray, *, tie_threshold: float = 0.0,
                      bootstrap_rounds: int = 1000, rng: np.random.Generator | None = None) -> dict:
    """Share of pairs where the metric's verdict equals the decided human label, with a 95 % interval.

    ``delta`` = m(A) − m(B) and ``human`` (0 = A, 1 = tie, 2 = B) per pair.
    """
    correct = metric_verdict(delta, tie_threshold) == human
    return accuracy_from_correct(correct, human == TIE, tie_threshold=tie_threshold,
                                 bootstrap_rounds=bootstrap_rounds, rng=rng)


def accuracy_from_correct(correct: np.ndarray, human_tie: np.ndarray, *, tie_threshold: float,
                          bootstrap_rounds: int, rng: np.random.Generator | None) -> dict:
    """Accuracy of per-pair ``correct`` flags with its 95 % bootstrap interval.

    Resampling n pairs with replacement makes the number of correct pairs Binomial(n, accuracy),
    so the bootstrap draws that binomial directly (identical distribution, no index arrays).
    """
    n = int(correct.size)
    if n == 0:
        return _none("not enough data: no pair with a decided human label and a metric score", 0,
                     ci_low=None, ci_high=None, tie_threshold=float(tie_threshold), n_human_ties=0)
    acc = float(correct.mean())
    low = high = None
    if bootstrap_rounds > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        boot = rng.binomial(n, acc, size=bootstrap_rounds) / n
        low, high = (float(x) for x in np.quantile(boot, [0.025, 0.975]))
    return {"value": acc, "reason": None, "n": n, "ci_low": low, "ci_high": high,
            "tie_threshold": float(tie_threshold), "n_human_ties": int(human_tie.sum())}


def _constant(x: np.ndarray) -> bool:
    return bool(x.size) and float(np.ptp(x)) == 0.0


def correlation(kind: str, x: np.ndarray, y: np.ndarray, *, min_n: int = 3,
                names: tuple[str, str] = ("x", "y"), x_sorted: bool = False) -> dict:
    """Kendall τ-b (``kind="kendall"``, scipy's default variant) or Spearman ρ, with p-value and n.

    ``x_sorted`` says x is already ascending, which lets large samples skip scipy's sorts
    (:mod:`analysis.correlation`; same statistic and p-value as scipy).
    """
    n = int(x.size)
    if n < min_n:
        return _none(f"not enough data: {n} item(s), need {min_n}", n, p_value=None)
    for values, name in ((x, names[0]), (y, names[1])):
        if _constant(values):
            return _none(f"not defined: {name} is constant", n, p_value=None)
    if x_sorted:
        value, p = (kendall_tau_b_sorted if kind == "kendall" else spearman_sorted)(x, y)
    else:
        res = stats.kendalltau(x, y) if kind == "kendall" else stats.spearmanr(x, y)
        value, p = float(res.statistic), float(res.pvalue)
    if not np.isfinite(value):
        return _none("not defined", n, p_value=None)
    return {"value": value, "reason": None, "n": n, "p_value": p if np.isfinite(p) else None}


def generator_means(pairs: np.ndarray, gen_a: np.ndarray, gen_b: np.ndarray, va: np.ndarray,
                    vb: np.ndarray, n_generators: int) -> np.ndarray:
    """Mean metric per generator over the pair sides it appears on (NaN where it has no score)."""
    ga, gb, a, b = gen_a[pairs], gen_b[pairs], va[pairs], vb[pairs]
    ok_a, ok_b = np.isfinite(a), np.isfinite(b)
    total = (np.bincount(ga[ok_a], weights=a[ok_a], minlength=n_generators)
             + np.bincount(gb[ok_b], weights=b[ok_b], minlength=n_generators))
    count = np.bincount(ga[ok_a], minlength=n_generators) + np.bincount(gb[ok_b], minlength=n_generators)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def metric_alignment(labels: dict[str, np.ndarray], va: np.ndarray, vb: np.ndarray, *, tie_threshold: float,
                     bootstrap_rounds: int, rng: np.random.Generator,
                     orders: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """All pair-level alignment numbers for one metric and one question.

    ``labels`` is :func:`analysis.aggregation.question_labels`; ``va``/``vb`` are indexed by pair.
    ``orders`` — argsorts of Δm and |Δm| over all pairs (:func:`metric_orders`) — may be shared
    by every question of the metric, so no question sorts again.
    """
    pair, label, counts = labels["pair"], labels["label"], labels["counts"]
    delta = va[pair] - vb[pair]
    scored = np.isfinite(delta)
    decided = label >= 0
    use = scored & decided
    m = labels["m"]
    pref = (counts[:, A] - counts[:, B]) / np.maximum(m, 1)
    human_decisive = use & (label != TIE)
    multi = m >= 2
    unanimous = use & labels["unanimous"]
    split = use & multi & ~labels["unanimous"]
    correct = metric_verdict(delta, tie_threshold) == label
    human_tie = label == TIE

    def accuracy(subset: np.ndarray) -> dict:
        return accuracy_from_correct(correct[subset], human_tie[subset], tie_threshold=tie_threshold,
                                     bootstrap_rounds=bootstrap_rounds, rng=rng)

    order, abs_order = orders if orders is not None else metric_orders(va, vb)
    n_pairs = va.size
    # Per-pair values on the full pair index, read back in the metric's sorted order.
    full_delta = va - vb
    full_pref = np.zeros(n_pairs)
    full_pref[pair] = pref
    full_agreement = np.zeros(n_pairs)
    full_agreement[pair] = labels["agreement"]
    by_delta = sorted_subset(order, pair[use], n_pairs)
    by_abs = sorted_subset(abs_order, pair[scored & multi], n_pairs)
    return {
        "n_pairs": int(pair.size),
        "n_scored": int(scored.sum()),
        "n_missing_score": int((~scored).sum()),
        "n_undecided": int((scored & ~decided).sum()),
        "pairwise_accuracy": accuracy(use),
        "pairwise_accuracy_decisive": accuracy(human_decisive),
        "kendall_tau_b": correlation("kendall", full_delta[by_delta], full_pref[by_delta], min_n=2, x_sorted=True,
                                     names=("metric difference", "human preference score")),
        "agreement_vs_metric": {
            "spearman_abs_delta_vs_pair_agreement": correlation(
                "spearman", np.abs(full_delta[by_abs]), full_agreement[by_abs], x_sorted=True,
                names=("|metric difference|", "pair agreement")),
            "accuracy_unanimous": accuracy(unanimous),
            "accuracy_split": accuracy(split),
        },
    }


def metric_orders(va: np.ndarray, vb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsorts of Δm and |Δm| over all pairs (NaN last), computed once per metric."""
    delta = va - vb
    return np.argsort(delta, kind="stable"), np.argsort(np.abs(delta), kind="stable")


def generator_alignment(means: np.ndarray, generators: list[str], ratings: dict[str, float]) -> dict:
    """Spearman between a metric's mean per generator and the Bradley–Terry ratings."""
    names = [g for g, mean in zip(generators, means, strict=True) if np.isfinite(mean) and g in ratings]
    index = {g: i for i, g in enumerate(generators)}
    x = np.array([means[index[g]] for g in names], dtype=float)
    y = np.array([ratings[g] for g in names], dtype=float)
    res = correlation("spearman", x, y, names=("metric mean", "rating"))
    res["metric_means"] = {g: float(means[index[g]]) for g in names}
    return res
