"""Every known answer of STATS.md, with the tolerance each is quoted to."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.agreement import fleiss_kappa_from_counts, krippendorff_alpha
from analysis.alignment import correlation
from analysis.ranking import fit_bradley_terry
from analysis.report import analyze
from tests.analysis.helpers import battles

nan = np.nan
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
])
FLEISS_WIKIPEDIA = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


@pytest.mark.parametrize(("level", "expected"),
                         [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_2011(level: str, expected: float) -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011, level).value == pytest.approx(expected, abs=5e-4)


def test_fleiss_wikipedia() -> None:
    assert fleiss_kappa_from_counts(FLEISS_WIKIPEDIA).value == pytest.approx(0.210, abs=5e-4)


def _ratings(df, **kwargs) -> dict[str, float]:
    ranking = analyze(df, bootstrap_rounds=0, **kwargs)["questions"]["q"]["ranking"]
    return {item["generator"]: item["rating"] for item in ranking["items"]}


def test_bradley_terry_three_wins_one_loss() -> None:
    ratings = _ratings(battles(3, 1))
    assert ratings["A"] == pytest.approx(1095.42, abs=0.01)
    assert ratings["B"] == pytest.approx(904.58, abs=0.01)
    assert ratings["A"] - ratings["B"] == pytest.approx(400 * np.log10(3), abs=1e-6)


def test_bradley_terry_ties_count_half() -> None:
    ratings = _ratings(battles(3, 1, ties=2))
    assert ratings["A"] == pytest.approx(1060.21, abs=0.01)
    assert ratings["B"] == pytest.approx(939.79, abs=0.01)
    assert ratings["A"] - ratings["B"] == pytest.approx(400 * np.log10(2), abs=1e-6)


def test_choix_conversion_known_answer() -> None:
    import choix

    data = [(0, 1), (0, 2), (1, 2), (2, 0), (0, 1), (1, 2)]
    choix_theta = choix.ilsr_pairwise(3, data)
    np.testing.assert_allclose(choix_theta, [0.7563, 0.0, -0.7563], atol=5e-5)
    wins = np.zeros((3, 3))
    for w, lo in data:
        wins[w, lo] += 1
    theta, converged = fit_bradley_terry(wins)
    assert converged.all()
    np.testing.assert_allclose(1000 + 400 * theta, 1000 + 400 * choix_theta / np.log(10), atol=1e-3)


def test_kendall_and_spearman_known_answer() -> None:
    h = np.array([1, 2, 2, 3, 4], dtype=float)
    m = np.array([0.1, 0.4, 0.3, 0.35, 0.9])
    tau = correlation("kendall", m, h, min_n=2)
    rho = correlation("spearman", m, h)
    assert tau["value"] == pytest.approx(0.7379, abs=5e-5)
    assert rho["value"] == pytest.approx(0.8208, abs=5e-5)
    assert tau["value"] == pytest.approx(stats.kendalltau(m, h).statistic, abs=1e-12)
