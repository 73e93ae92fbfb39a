"""Position bias: left-chosen logic and the vectorised binomial test against scipy.stats.binomtest."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.bias import binomial_test_half
from analysis.report import analyze
from tests.analysis.helpers import judgments


def test_vectorised_test_equals_binomtest() -> None:
    rng = np.random.default_rng(0)
    n = np.concatenate([[1, 2, 2, 10, 10, 10, 7], rng.integers(1, 3000, 60)])
    k = np.concatenate([[0, 1, 2, 0, 5, 10, 3], [rng.integers(0, m + 1) for m in n[7:]]])
    p, low, high = binomial_test_half(k, n)
    for i in range(n.size):
        ref = stats.binomtest(int(k[i]), int(n[i]), 0.5)
        ci = ref.proportion_ci(confidence_level=0.95, method="exact")
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
        assert low[i] == pytest.approx(ci.low, abs=1e-9)
        assert high[i] == pytest.approx(ci.high, abs=1e-9)


def test_left_chosen_counts_sides_and_excludes_ties() -> None:
    df = judgments([
        (1, "x", "A", "B", "a", True),    # left chosen
        (2, "x", "A", "B", "b", False),   # left chosen (B was left)
        (3, "x", "A", "B", "a", False),   # right chosen
        (4, "x", "A", "B", "tie", True),  # excluded: tie
        (5, "y", "A", "B", "a", None),    # excluded: side unknown
        (6, "y", "A", "B", "b", True),    # right chosen
    ])
    bias = analyze(df, bootstrap_rounds=0)["questions"]["q"]["position_bias"]
    assert bias["overall"]["n"] == 4 and bias["overall"]["left_chosen"] == 2
    assert bias["overall"]["p_value"] == pytest.approx(stats.binomtest(2, 4).pvalue)
    assert bias["n_ties_excluded"] == 1 and bias["n_side_unknown"] == 1
    assert "ties" in bias["test"]
    per = {r["rater"]: r for r in bias["per_rater"]}
    assert per["x"]["p_left"] == pytest.approx(2 / 3) and per["y"]["left_chosen"] == 0


def test_no_side_information_gives_a_reason() -> None:
    df = judgments([(1, "x", "A", "B", "a")]).drop(columns="left_is_a")
    bias = analyze(df, bootstrap_rounds=0)["questions"]["q"]["position_bias"]
    assert bias["overall"]["p_left"] is None and "not enough data" in bias["overall"]["reason"]
