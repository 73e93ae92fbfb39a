"""Bradley–Terry fits and bootstrap against choix and direct resampling; win rates; edge cases."""

from __future__ import annotations

import choix
import numpy as np
import pandas as pd
import pytest

from analysis.ranking import Outcomes, bradley_terry, fit_bradley_terry, strongly_connected, win_rate_report
from analysis.report import analyze
from tests.analysis.helpers import battles, judgments, random_judgments

LN10 = np.log(10)


def _outcomes(df: pd.DataFrame) -> Outcomes:
    names = sorted(set(df["generator_a"]) | set(df["generator_b"]))
    index = {n: i for i, n in enumerate(names)}
    answer = df["answer"].map({"a": 0, "tie": 1, "b": 2}).to_numpy()
    return Outcomes.from_arrays(df["generator_a"].map(index).to_numpy(), df["generator_b"].map(index).to_numpy(),
                                answer, names)


def _choix_ratings(df: pd.DataFrame) -> dict[str, float]:
    """Independent MLE: choix on (winner, loser) lists, a win counted twice and a tie once each way."""
    names = sorted(set(df["generator_a"]) | set(df["generator_b"]))
    index = {n: i for i, n in enumerate(names)}
    data = []
    for row in df.itertuples():
        a, b = index[row.generator_a], index[row.generator_b]
        if row.answer == "a":
            data += [(a, b), (a, b)]
        elif row.answer == "b":
            data += [(b, a), (b, a)]
        else:
            data += [(a, b), (b, a)]
    theta = choix.ilsr_pairwise(len(names), data, tol=1e-12)
    theta = theta - theta.mean()
    return {n: 1000 + 400 * theta[i] / LN10 for n, i in index.items()}


@pytest.mark.parametrize("seed", range(4))
def test_ratings_match_choix_on_random_data_with_ties(seed: int) -> None:
    df = random_judgments(np.random.default_rng(seed), n_pairs=150, n_generators=5, overlap=2, questions=("q",))
    ranking = bradley_terry(_outcomes(df), bootstrap_rounds=0)
    assert ranking["identified"]
    expected = _choix_ratings(df)
    for item in ranking["items"]:
        assert item["rating"] == pytest.approx(expected[item["generator"]], abs=1e-4)
    assert np.mean([i["rating"] for i in ranking["items"]]) == pytest.approx(1000, abs=1e-9)


def test_batched_fit_equals_one_by_one() -> None:
    rng = np.random.default_rng(0)
    wins = rng.integers(1, 20, size=(7, 4, 4)).astype(float)
    wins[:, np.arange(4), np.arange(4)] = 0
    batch, ok = fit_bradley_terry(wins)
    assert ok.all()
    for b in range(7):
        single, _ = fit_bradley_terry(wins[b])
        np.testing.assert_allclose(batch[b], single, atol=1e-10)


def test_multinomial_bootstrap_matches_resampling_judgments() -> None:
    """The multinomial shortcut and resampling rows give the same interval (up to Monte Carlo error)."""
    df = random_judgments(np.random.default_rng(1), n_pairs=400, n_generators=4, overlap=1, questions=("q",))
    out = _outcomes(df)
    fast = bradley_terry(out, bootstrap_rounds=1500, rng=np.random.default_rng(2))
    rng = np.random.default_rng(3)
    names = out.generators
    index = {n: i for i, n in enumerate(names)}
    a = df["generator_a"].map(index).to_numpy()
    b = df["generator_b"].map(index).to_numpy()
    ans = df["answer"].map({"a": 0, "tie": 1, "b": 2}).to_numpy()
    boots = []
    for _ in range(1500):
        i = rng.integers(0, len(df), len(df))
        w = np.zeros((4, 4))
        np.add.at(w, (a[i], b[i]), np.where(ans[i] == 0, 1.0, np.where(ans[i] == 1, 0.5, 0.0)))
        np.add.at(w, (b[i], a[i]), np.where(ans[i] == 2, 1.0, np.where(ans[i] == 1, 0.5, 0.0)))
        boots.append(1000 + 400 * fit_bradley_terry(w)[0])
    low, high = np.quantile(np.array(boots), [0.025, 0.975], axis=0)
    for item in fast["items"]:
        i = index[item["generator"]]
        width = high[i] - low[i]
        assert item["ci_low"] == pytest.approx(low[i], abs=0.1 * width)
        assert item["ci_high"] == pytest.approx(high[i], abs=0.1 * width)


def test_rank_is_one_plus_generators_clearly_above() -> None:
    df = random_judgments(np.random.default_rng(4), n_pairs=600, n_generators=6, overlap=1, questions=("q",),
                          strength_sd=0.4)
    items = bradley_terry(_outcomes(df), bootstrap_rounds=300)["items"]
    for item in items:
        above = sum(other["ci_low"] > item["ci_high"] for other in items)
        assert item["rank"] == 1 + above
        assert item["ci_low"] <= item["rating"] <= item["ci_high"]


def test_win_rate_matrix_counts() -> None:
    df = judgments([(1, "r", "A", "B", "a"), (2, "r", "A", "B", "tie"), (3, "r", "A", "B", "b"),
                    (4, "r", "A", "B", "a"), (5, "r", "B", "C", "a")])
    wr = win_rate_report(_outcomes(df))
    assert wr["generators"] == ["A", "B", "C"]
    assert wr["wins"][0][1] == 2 and wr["losses"][0][1] == 1 and wr["ties"][0][1] == 1 and wr["n"][0][1] == 4
    assert wr["wins"][1][0] == 1 and wr["losses"][1][0] == 2
    assert wr["win_rate"][0][1] == pytest.approx(0.5)
    assert wr["win_rate"][0][2] is None  # A never met C


def test_generator_that_never_wins_gets_a_finite_flagged_rating() -> None:
    df = pd.concat([battles(5, 2, a="A", b="B"), battles(4, 0, a="A", b="C"), battles(3, 0, a="B", b="C")])
    df["pair_id"] = range(len(df))
    ranking = analyze(df, bootstrap_rounds=200)["questions"]["q"]["ranking"]
    assert ranking["identified"] is False
    assert any("never wins" in w for w in ranking["warnings"])
    items = {i["generator"]: i for i in ranking["items"]}
    assert all(np.isfinite(i["rating"]) and np.isfinite(i["ci_low"]) for i in ranking["items"])
    assert items["C"]["rating"] < items["B"]["rating"] < items["A"]["rating"]
    assert ranking["items"][-1]["generator"] == "C"


def test_disconnected_graph_is_reported() -> None:
    df = pd.concat([battles(3, 1, a="A", b="B"), battles(2, 2, a="C", b="D")])
    df["pair_id"] = range(len(df))
    ranking = analyze(df, bootstrap_rounds=50)["questions"]["q"]["ranking"]
    assert ranking["connected"] is False and ranking["identified"] is False
    assert any("disconnected" in w for w in ranking["warnings"])


def test_single_generator_and_no_data() -> None:
    empty = bradley_terry(Outcomes.from_arrays(np.array([], int), np.array([], int), np.array([], int), []))
    assert empty["items"] == [] and "not enough data" in empty["reason"]
    one = bradley_terry(Outcomes.from_arrays(np.array([0]), np.array([1]), np.array([0]), ["A", "B", "C"]))
    assert len(one["items"]) == 2  # only generators that were compared


def test_all_ties_rate_everyone_1000() -> None:
    items = analyze(battles(0, 0, ties=5), bootstrap_rounds=100)["questions"]["q"]["ranking"]["items"]
    for item in items:
        assert item["rating"] == pytest.approx(1000) and item["ci_low"] == pytest.approx(1000)
        assert item["rank"] == 1


def test_strong_connectivity() -> None:
    cycle = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert strongly_connected(np.stack([cycle, chain])).tolist() == [True, False]
