"""Metric–human alignment: the tie rule, the bootstrap, τ-b and Spearman against scipy, score inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.alignment import correlation, metric_verdict, pairwise_accuracy
from analysis.coding import TIE, A, B
from analysis.correlation import MIN_FAST, kendall_tau_b_sorted, sorted_subset, spearman_sorted
from analysis.report import analyze
from tests.analysis.helpers import judgments, random_judgments


def test_tie_rule_human_tie_needs_small_delta_metric_tie_loses_to_preference() -> None:
    delta = np.array([0.5, 0.05, -0.5, 0.05, 0.5, 0.0])
    human = np.array([A, A, B, TIE, TIE, B])
    res = pairwise_accuracy(delta, human, tie_threshold=0.1, bootstrap_rounds=0)
    # correct: A/0.5, B/-0.5, tie/0.05; wrong: A/0.05 (metric tie), tie/0.5, B/0.0 (metric tie)
    assert res["value"] == pytest.approx(3 / 6)
    assert res["tie_threshold"] == 0.1 and res["n"] == 6 and res["n_human_ties"] == 2
    assert metric_verdict(np.array([0.0]), 0.0).tolist() == [TIE]


def test_accuracy_bootstrap_matches_resampling_pairs() -> None:
    rng = np.random.default_rng(0)
    human = rng.integers(0, 3, 300)
    delta = np.where(rng.random(300) < 0.6, np.array([1.0, 0.0, -1.0])[human], rng.normal(size=300))
    res = pairwise_accuracy(delta, human, bootstrap_rounds=4000, rng=np.random.default_rng(1))
    correct = metric_verdict(delta) == human
    naive = [correct[rng.integers(0, 300, 300)].mean() for _ in range(4000)]
    low, high = np.quantile(naive, [0.025, 0.975])
    assert res["ci_low"] == pytest.approx(low, abs=0.012)
    assert res["ci_high"] == pytest.approx(high, abs=0.012)


@pytest.mark.parametrize("seed", range(5))
def test_correlations_equal_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, 200) / 3
    y = np.round(rng.normal(size=200) + x, 1)
    tau = correlation("kendall", y, x)
    rho = correlation("spearman", y, x)
    assert tau["value"] == pytest.approx(stats.kendalltau(y, x).statistic, abs=1e-12)
    assert tau["p_value"] == pytest.approx(stats.kendalltau(y, x).pvalue, rel=1e-9)
    assert rho["value"] == pytest.approx(stats.spearmanr(y, x).statistic, abs=1e-12)


def test_correlation_reasons() -> None:
    assert "not enough data" in correlation("kendall", np.array([1.0]), np.array([2.0]), min_n=2)["reason"]
    assert "constant" in correlation("spearman", np.ones(5), np.arange(5.0))["reason"]


def _scored(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    df = df.assign(prompt_id=df["pair_id"])
    videos = pd.concat([
        df[["prompt_id", "generator_a"]].rename(columns={"generator_a": "generator"}),
        df[["prompt_id", "generator_b"]].rename(columns={"generator_b": "generator"}),
    ]).drop_duplicates()
    strength = {g: i * 0.3 for i, g in enumerate(sorted(videos["generator"].unique()))}
    videos = videos.assign(metric="m", value=videos["generator"].map(strength) + rng.normal(0, 0.5, len(videos)))
    return df, videos


def test_video_and_pair_score_forms_agree() -> None:
    df, videos = _scored(random_judgments(np.random.default_rng(2), n_pairs=200, questions=("q",)))
    by_video = analyze(df, videos, bootstrap_rounds=200)["questions"]["q"]["alignment"]["metrics"]["m"]
    key = videos.set_index(["prompt_id", "generator"])["value"]
    pairs = df.drop_duplicates("pair_id")
    pair_form = pd.DataFrame({
        "pair_id": pairs["pair_id"], "metric": "m",
        "value_a": [key[(p, g)] for p, g in zip(pairs["prompt_id"], pairs["generator_a"], strict=True)],
        "value_b": [key[(p, g)] for p, g in zip(pairs["prompt_id"], pairs["generator_b"], strict=True)],
    })
    by_pair = analyze(df, pair_form, bootstrap_rounds=200)["questions"]["q"]["alignment"]["metrics"]["m"]
    assert by_video == by_pair
    assert by_pair["generator_spearman"]["n"] == 5
    assert by_pair["pairwise_accuracy"]["n"] + by_pair["n_undecided"] == by_pair["n_scored"]


def test_lower_is_better_metric_is_flipped() -> None:
    df = judgments([(1, "x", "A", "B", "a"), (2, "x", "A", "B", "b")])
    scores = pd.DataFrame({"pair_id": [1, 2], "metric": "loss", "value_a": [0.1, 0.9], "value_b": [0.5, 0.2],
                           "higher_is_better": False})
    res = analyze(df, scores, bootstrap_rounds=0)["questions"]["q"]["alignment"]["metrics"]["loss"]
    assert res["pairwise_accuracy"]["value"] == 1.0 and res["higher_is_better"] is False


def test_missing_scores_and_undecided_pairs_are_counted_not_used() -> None:
    df = judgments([(1, "x", "A", "B", "a"), (1, "y", "A", "B", "b"),  # undecided
                    (2, "x", "A", "B", "a"), (2, "y", "A", "B", "a"),
                    (3, "x", "A", "B", "b")])
    scores = pd.DataFrame({"pair_id": [1, 2, 3], "metric": "m", "value_a": [1.0, 2.0, np.nan],
                           "value_b": [0.0, 1.0, 1.0]})
    res = analyze(df, scores, bootstrap_rounds=10)["questions"]["q"]["alignment"]["metrics"]["m"]
    assert res["n_missing_score"] == 1 and res["n_undecided"] == 1
    assert res["pairwise_accuracy"]["n"] == 1 and res["pairwise_accuracy"]["value"] == 1.0
    assert res["kendall_tau_b"]["value"] is None  # one pair is not enough
    assert res["agreement_vs_metric"]["accuracy_unanimous"]["n"] == 1
    assert res["agreement_vs_metric"]["accuracy_split"]["value"] is None


def test_per_metric_tie_threshold() -> None:
    df = judgments([(1, "x", "A", "B", "tie"), (2, "x", "A", "B", "a")])
    scores = pd.DataFrame({"pair_id": [1, 2, 1, 2], "metric": ["m", "m", "n", "n"],
                           "value_a": [0.51, 0.9, 0.51, 0.9], "value_b": [0.5, 0.1, 0.5, 0.1]})
    out = analyze(df, scores, bootstrap_rounds=0, tie_threshold={"m": 0.05})["questions"]["q"]["alignment"]
    assert out["metrics"]["m"]["pairwise_accuracy"]["value"] == 1.0
    assert out["metrics"]["n"]["pairwise_accuracy"]["value"] == 0.5
    assert out["metrics"]["m"]["pairwise_accuracy"]["tie_threshold"] == 0.05


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", ["preference", "agreement", "many_levels", "x_ties"])
def test_presorted_fast_path_equals_scipy(seed: int, shape: str) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(MIN_FAST, 4000))
    x = rng.normal(size=n)
    if shape == "preference":  # (votes A − votes B) / 3
        y = (rng.integers(0, 4, n) - rng.integers(0, 4, n)) / 3 + 0.0 * x
        y = np.where(rng.random(n) < 0.4, np.sign(x) * (x > 0.5), y)
    elif shape == "agreement":
        y = rng.choice([0.0, 1 / 3, 1.0], size=n)
    elif shape == "many_levels":  # > MAX_LEVELS: handed to scipy
        y = np.round(x + rng.normal(size=n), 1)
    else:
        x = np.round(x, 1)
        y = rng.integers(-2, 3, n).astype(float)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    for ours, ref in ((kendall_tau_b_sorted(xs, ys), stats.kendalltau(x, y)),
                      (spearman_sorted(xs, ys), stats.spearmanr(x, y))):
        assert ours[0] == pytest.approx(ref.statistic, abs=1e-12)
        assert ours[1] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_sorted_subset_keeps_the_order() -> None:
    order = np.array([4, 0, 3, 1, 2])
    assert sorted_subset(order, np.array([1, 4, 2]), 5).tolist() == [4, 1, 2]
