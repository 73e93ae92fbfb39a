"""Agreement against the krippendorff package, statsmodels and direct loops."""

from __future__ import annotations

from collections import Counter

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from analysis.agreement import (
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    krippendorff_alpha_from_counts,
    percent_agreement_from_counts,
    rater_agreement,
)
from analysis.coding import ORDINAL_CODES, category_counts, encode_judgments
from analysis.report import analyze
from tests.analysis.helpers import random_judgments

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def reliability_data(draw: st.DrawFn) -> np.ndarray:
    """Raters × units with values in {-1, 0, 1} and NaN for missing."""
    n_raters = draw(st.integers(2, 6))
    n_units = draw(st.integers(2, 25))
    cells = draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0, np.nan]), min_size=n_raters * n_units,
                          max_size=n_raters * n_units))
    return np.array(cells).reshape(n_raters, n_units)


def _package_alpha(data: np.ndarray, level: str) -> float | None:
    try:
        value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    except (ValueError, ZeroDivisionError):
        return None
    return None if not np.isfinite(value) else float(value)


@FAST
@given(reliability_data(), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_alpha_matches_krippendorff_package(data: np.ndarray, level: str) -> None:
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    assume(pairable.any() and np.unique(values[~np.isnan(values)]).size >= 2)
    expected = _package_alpha(data, level)
    assume(expected is not None)
    assert krippendorff_alpha(data, level).value == pytest.approx(expected, abs=1e-9)


def test_alpha_from_counts_with_an_unused_middle_category_matches_package() -> None:
    # The ordinal distance uses the marginals, so an empty "tie" column must not change α.
    data = np.array([[-1, 1, 1, -1, 1], [-1, 1, -1, -1, 1], [1, 1, np.nan, -1, 1]], dtype=float)
    counts = np.stack([np.array([np.sum(data[:, u] == v) for v in ORDINAL_CODES]) for u in range(5)])
    ours = krippendorff_alpha_from_counts(counts, "ordinal", ORDINAL_CODES).value
    assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))


def test_alpha_undefined_cases_give_reasons() -> None:
    same = krippendorff_alpha(np.ones((3, 4)), "nominal")
    assert same.value is None and "no variation" in same.reason
    lonely = krippendorff_alpha(np.array([[1.0, np.nan], [np.nan, 2.0]]), "nominal")
    assert lonely.value is None and "not enough data" in lonely.reason


@FAST
@given(st.integers(2, 7), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_fleiss_matches_statsmodels(n_raters: int, n_items: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = rng.integers(0, 3, size=(n_items, n_raters))
    table, _ = aggregate_raters(items, n_cat=3)
    ours = fleiss_kappa_from_counts(table)
    p_e = ((table.sum(axis=0) / table.sum()) ** 2).sum()
    if p_e >= 1:
        assert ours.value is None
    else:
        assert ours.value == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-10)


def test_fleiss_needs_a_fixed_number_of_raters() -> None:
    res = fleiss_kappa_from_counts(np.array([[2, 1, 0], [1, 0, 0], [0, 3, 0]]))
    assert res.value is None and "vary" in res.reason


def test_percent_agreement_pools_rater_pairs() -> None:
    # item 1: a,a,b -> 1 of 3 pairs agree; item 2: tie,tie -> 1 of 1; item 3 (one judgment) ignored.
    counts = np.array([[2, 0, 1], [0, 2, 0], [1, 0, 0]])
    res = percent_agreement_from_counts(counts)
    assert res.value == pytest.approx((2 + 2) / (6 + 2))
    assert res.n == 2


def _loop_rater_agreement(df) -> dict[str, tuple[int, int, int, int]]:
    """Direct loops: (decided, agree-with-majority, other pairs, agreeing pairs) per rater."""
    by_pair: dict = {}
    for row in df.itertuples():
        by_pair.setdefault(row.pair_id, []).append((row.rater, row.answer))
    out: dict = {}
    for votes in by_pair.values():
        for i, (rater, answer) in enumerate(votes):
            others = [a for j, (_, a) in enumerate(votes) if j != i]
            d, agree, pairs, same = out.get(rater, (0, 0, 0, 0))
            pairs += len(others)
            same += sum(a == answer for a in others)
            if others:
                top = Counter(others).most_common()
                if len(top) == 1 or top[0][1] > top[1][1]:
                    d += 1
                    agree += top[0][0] == answer
            out[rater] = (d, agree, pairs, same)
    return out


def test_leave_one_out_rater_agreement_matches_loops() -> None:
    rng = np.random.default_rng(3)
    df = random_judgments(rng, n_pairs=120, overlap=3, questions=("q",))
    df = df.drop(index=rng.choice(len(df), size=60, replace=False))  # uneven raters per pair
    enc = encode_judgments(df)
    q = enc.question("q")
    stats = rater_agreement(q, category_counts(q.pair, q.answer.astype(np.int64), enc.n_pairs), len(enc.raters))
    expected = _loop_rater_agreement(df)
    for r, label in enumerate(enc.raters):
        d, agree, pairs, same = expected[label]
        assert stats["n_majority"][r] == d
        assert stats["majority_agree"][r] == agree
        assert stats["pairs_total"][r] == pairs
        assert stats["pairs_agree"][r] == same


def test_report_labels_nominal_and_ordinal_and_uses_the_coding() -> None:
    df = random_judgments(np.random.default_rng(5), n_pairs=80, questions=("q",))
    agreement = analyze(df, bootstrap_rounds=0)["questions"]["q"]["agreement"]
    assert agreement["krippendorff_alpha_nominal"]["level"] == "nominal"
    assert agreement["krippendorff_alpha_ordinal"]["level"] == "ordinal"
    assert agreement["coding"] == "A = -1, tie = 0, B = +1"
    # Reference: the package on raters × pairs with the coding A=-1, tie=0, B=+1.
    table = df.assign(code=df["answer"].map({"a": -1, "tie": 0, "b": 1})).pivot(
        index="rater", columns="pair_id", values="code").to_numpy(dtype=float)
    for level in ("nominal", "ordinal"):
        expected = krippendorff.alpha(reliability_data=table, level_of_measurement=level)
        assert agreement[f"krippendorff_alpha_{level}"]["value"] == pytest.approx(expected, abs=1e-10)
