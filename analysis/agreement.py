"""Inter-rater agreement: percent agreement, Krippendorff's α, Fleiss' κ, per-rater agreement.

Everything is computed from an items × categories count table (``counts[i, c]`` = how many
raters put item ``i`` in category ``c``), which makes α a handful of matrix products even for
millions of judgments. Definitions follow STATS.md; results are checked against the
``krippendorff`` package and ``statsmodels.stats.inter_rater`` in tests/analysis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from analysis.coding import ORDINAL_CODES, PairTable, QuestionData, label_order

LEVELS = ("nominal", "ordinal", "interval", "ratio")


@dataclass(frozen=True)
class Statistic:
    """A number, or ``value=None`` with the ``reason`` it cannot be given."""

    value: float | None
    reason: str | None = None
    n: int = 0  # items (pairs) it is computed over

    def to_dict(self) -> dict:
        return asdict(self)


def _squared_distances(level: str, values: np.ndarray, marginals: np.ndarray) -> np.ndarray:
    """Krippendorff's δ²(c, k) for sorted category ``values`` with pairable marginals ``n_c``."""
    v = values.astype(float)
    if level == "nominal":
        return 1.0 - np.eye(v.size)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(marginals, dtype=float)])
        lo = np.minimum.outer(np.arange(v.size), np.arange(v.size))
        hi = np.maximum.outer(np.arange(v.size), np.arange(v.size))
        between = cum[hi + 1] - cum[lo]  # Σ_{g=c..k} n_g
        return (between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2
    if level == "interval":
        return np.subtract.outer(v, v) ** 2
    if level == "ratio":
        s = np.add.outer(v, v)
        d = np.subtract.outer(v, v)
        return np.divide(d, s, out=np.zeros_like(d), where=s != 0) ** 2
    raise ValueError(f"level must be one of {LEVELS}, not {level!r}")


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidences o_ck = Σ_u (n_uc n_uk − [c=k] n_uc) / (m_u − 1), items with m_u ≥ 2."""
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    with np.errstate(divide="ignore"):
        weights = np.where(m >= 2, 1.0 / (m - 1.0), 0.0)
    weighted = counts * weights[:, None]
    o = weighted.T @ counts
    o[np.diag_indices_from(o)] -= weighted.sum(axis=0)
    return o


def alpha_from_coincidences(o: np.ndarray, level: str = "nominal", values: np.ndarray | None = None,
                            n_items: int = 0) -> Statistic:
    """α from a coincidence matrix (see :func:`krippendorff_alpha_from_counts`)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    if n_items == 0 or o.sum() == 0:
        return Statistic(None, "not enough data: no item has judgments from 2 or more raters", 0)
    vals = np.arange(o.shape[0]) if values is None else np.asarray(values)
    marginals = o.sum(axis=1)
    n = marginals.sum()
    delta2 = _squared_distances(level, vals, marginals)
    expected = marginals @ delta2 @ marginals
    if expected <= 0:
        return Statistic(None, "not defined: every pairable judgment has the same answer (no variation)", n_items)
    return Statistic(float(1.0 - (n - 1.0) * float((o * delta2).sum()) / expected), None, n_items)


def krippendorff_alpha_from_counts(
    counts: np.ndarray, level: str = "nominal", values: np.ndarray | None = None
) -> Statistic:
    """α = 1 − D_o/D_e from an items × categories count table.

    ``values`` are the categories' numeric values in column order, ascending (default 0, 1, …);
    only interval and ratio use their magnitudes, ordinal only their order. Items with fewer
    than two judgments are not pairable and are ignored. ``None`` when no item is pairable or
    when all pairable judgments fall in one category (D_e = 0, α undefined).
    """
    counts = np.asarray(counts)
    n_items = int((counts.sum(axis=1) >= 2).sum()) if counts.size else 0
    o = coincidence_matrix(counts) if n_items else np.zeros((counts.shape[1],) * 2)
    return alpha_from_coincidences(o, level, values, n_items)


def krippendorff_alpha(reliability_data: np.ndarray, level: str = "nominal") -> Statistic:
    """α from a raters × units array with NaN for missing (the ``krippendorff`` package's layout)."""
    data = np.asarray(reliability_data, dtype=float)
    rater_idx, unit_idx = np.nonzero(~np.isnan(data))
    if unit_idx.size == 0:
        return Statistic(None, "not enough data: no judgments", 0)
    vals = data[rater_idx, unit_idx]
    domain = np.unique(vals)
    flat = np.bincount(unit_idx * domain.size + np.searchsorted(domain, vals), minlength=data.shape[1] * domain.size)
    return krippendorff_alpha_from_counts(flat.reshape(data.shape[1], domain.size), level, domain)


def percent_agreement_from_counts(counts: np.ndarray) -> Statistic:
    """Share of agreeing rater pairs, pooled over items with ≥ 2 judgments: Σ n_c(n_c−1) / Σ m(m−1)."""
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        return Statistic(None, "not enough data: no item has judgments from 2 or more raters", 0)
    agree = (counts * (counts - 1)).sum()  # items with m < 2 contribute 0
    total = (m[keep] * (m[keep] - 1)).sum()
    return Statistic(float(agree / total), None, int(keep.sum()))


def fleiss_kappa_from_counts(counts: np.ndarray) -> Statistic:
    """Fleiss' κ over all items, which must all have the same number m ≥ 2 of judgments.

    Same formula as ``statsmodels.stats.inter_rater.fleiss_kappa(table, method="fleiss")``.
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    counts, m = counts[m > 0], m[m > 0]
    if m.size == 0:
        return Statistic(None, "not enough data: no judgments", 0)
    if m.min() != m.max():
        return Statistic(None, f"not defined: raters per pair vary ({int(m.min())}–{int(m.max())}); "
                               "Fleiss' κ needs the same number on every pair", int(m.size))
    r = float(m[0])
    if r < 2:
        return Statistic(None, "not enough data: 1 rater per pair", int(m.size))
    p_j = counts.sum(axis=0) / counts.sum()
    p_e = float((p_j ** 2).sum())
    if p_e >= 1.0:
        return Statistic(None, "not defined: every judgment has the same answer (no variation)", int(m.size))
    p_bar = float((counts * (counts - 1)).sum() / (r * (r - 1)) / m.size)
    return Statistic((p_bar - p_e) / (1.0 - p_e), None, int(m.size))


def pair_agreement(counts: np.ndarray) -> np.ndarray:
    """Per item: share of its rater pairs that agree; NaN where fewer than 2 judgments (internal use)."""
    c = np.asarray(counts, dtype=float)
    cols = [c[:, j] for j in range(c.shape[1])]
    m = sum(cols)
    same = sum(x * (x - 1.0) for x in cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m >= 2, same / (m * (m - 1.0)), np.nan)


def rater_agreement(q: QuestionData, full: np.ndarray, n_raters: int) -> dict[str, np.ndarray]:
    """Per rater, agreement with the other raters of the same pairs (leave-one-out).

    ``full`` is the n_pairs × 3 count table of ``q`` (indexed by ``q.pair``). For each judgment
    the *others* are the remaining judgments of its pair; their majority is decided when one
    category has strictly the most votes. Returned arrays have length ``n_raters``:
    ``n`` judgments, ``n_with_others``, ``n_majority`` (others' majority decided),
    ``majority_agree`` (agreements with it), ``pairs_agree`` / ``pairs_total`` (agreeing /
    all (rater, other rater) pairs), gold ``n_gold`` / ``gold_correct``, and ``answer_counts``.
    """
    own = q.answer
    # Column by column: 1-D operations are far faster than axis=1 reductions on n × 3.
    others = [np.where(own == c, full[:, c][q.pair] - 1, full[:, c][q.pair]) for c in range(3)]
    m_others = others[0] + others[1] + others[2]
    top = np.maximum(np.maximum(others[0], others[1]), others[2])
    n_top = (others[0] == top).astype(np.int8) + (others[1] == top) + (others[2] == top)
    decided = (m_others > 0) & (n_top == 1)
    majority = np.where(others[0] == top, 0, np.where(others[1] == top, 1, 2))
    agree = decided & (majority == own)
    same = np.choose(own, others)
    gold = q.gold >= 0

    def per_rater(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(q.rater, weights=weights, minlength=n_raters)

    return {
        "n": per_rater(),
        "n_with_others": per_rater(m_others > 0),
        "n_majority": per_rater(decided),
        "majority_agree": per_rater(agree),
        "pairs_agree": per_rater(same),
        "pairs_total": per_rater(m_others),
        "n_gold": per_rater(gold),
        "gold_correct": per_rater(gold & (q.gold == own)),
        "answer_counts": np.bincount(q.rater * 3 + own, minlength=n_raters * 3).reshape(n_raters, 3),
    }


def _ratio(num: float, den: float, reason: str) -> dict:
    return {"value": float(num / den), "reason": None} if den > 0 else {"value": None, "reason": reason}


def agreement_report(q: QuestionData, table: PairTable, raters: np.ndarray) -> dict:
    """Agreement section of the dashboard for one question (JSON-ready)."""
    counts, m = table.counts, table.m
    multi = int((m >= 2).sum())
    o = coincidence_matrix(counts) if multi else np.zeros((3, 3))
    out: dict = {
        "coding": "A = -1, tie = 0, B = +1",
        "n_pairs": int(m.size),
        "n_pairs_multi_rated": multi,
        "raters_per_pair": {"min": int(m.min()) if m.size else None, "max": int(m.max()) if m.size else None,
                            "mean": float(m.mean()) if m.size else None},
        "percent_agreement": percent_agreement_from_counts(counts).to_dict(),
        "krippendorff_alpha_nominal": {**alpha_from_coincidences(o, "nominal", None, multi).to_dict(),
                                       "level": "nominal"},
        "krippendorff_alpha_ordinal": {**alpha_from_coincidences(o, "ordinal", ORDINAL_CODES, multi).to_dict(),
                                       "level": "ordinal"},
        "fleiss_kappa": fleiss_kappa_from_counts(counts).to_dict(),
    }
    stats = rater_agreement(q, table.full, len(raters))
    used = np.array([r for r in label_order(raters) if stats["n"][r] > 0], dtype=np.int64)
    if used.size == 1:
        for key in ("percent_agreement", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal", "fleiss_kappa"):
            if out[key]["value"] is None:
                out[key]["reason"] = "not enough data: 1 rater"
    per_rater = []
    for r in used:
        per_rater.append({
            "rater": raters[r],
            "n": int(stats["n"][r]),
            "answers": dict(zip(("a", "tie", "b"), (int(c) for c in stats["answer_counts"][r]), strict=True)),
            "majority_agreement": {**_ratio(stats["majority_agree"][r], stats["n_majority"][r],
                                            "not enough data: no pair where the other raters' majority is decided"),
                                   "n": int(stats["n_majority"][r])},
            "pairwise_agreement": {**_ratio(stats["pairs_agree"][r], stats["pairs_total"][r],
                                            "not enough data: no pair judged by another rater"),
                                   "n": int(stats["n_with_others"][r])},
            "gold_accuracy": {**_ratio(stats["gold_correct"][r], stats["n_gold"][r], "no gold pairs judged"),
                              "n": int(stats["n_gold"][r])},
        })
    out["per_rater"] = per_rater
    return out
