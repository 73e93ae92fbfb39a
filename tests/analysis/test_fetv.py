"""FETV (real ratings): the analysis against a straightforward, independent computation.

Reference path: read the JSON lines with the json module, build pairwise judgments with loops,
then the krippendorff package, statsmodels, choix and scipy.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import choix
import krippendorff
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from analysis.datasets import FETV_QUESTIONS, fetv_judgments, fetv_video_scores
from analysis.report import analyze
from tests.analysis.helpers import FETV_DIR

pytestmark = pytest.mark.skipif(not (FETV_DIR / "human_ratings.jsonl").exists(), reason="FETV data not present")
CODE = {"a": -1, "tie": 0, "b": 1}


@pytest.fixture(scope="module")
def reference() -> dict:
    """Pairwise judgments by plain loops: {question: {(idx, X, Y): {rater: answer}}}."""
    ratings: dict = defaultdict(dict)
    with open(FETV_DIR / "human_ratings.jsonl") as f:
        for line in f:
            row = json.loads(line)
            ratings[(row["rater"], row["idx"])][row["model"]] = row
    out: dict = {q: defaultdict(dict) for q in FETV_QUESTIONS.values()}
    for (rater, idx), models in ratings.items():
        for x, y in itertools.combinations(sorted(models), 2):
            for criterion, question in FETV_QUESTIONS.items():
                sx, sy = models[x][criterion], models[y][criterion]
                out[question][(idx, x, y)][rater] = "a" if sx > sy else "b" if sx < sy else "tie"
    return out


@pytest.fixture(scope="module")
def result() -> dict:
    return analyze(fetv_judgments(FETV_DIR), fetv_video_scores(FETV_DIR), bootstrap_rounds=200, seed=0)


def test_loader_matches_the_readme_and_the_loops(reference: dict) -> None:
    df = fetv_judgments(FETV_DIR)
    assert len(df) == 3 * 11_142
    assert (df.groupby("question").size() == 11_142).all()
    assert (df.groupby(["question", "pair_id"]).size() == 3).all()
    for row in df.sample(500, random_state=0).itertuples():
        assert reference[row.question][(row.prompt_id, row.generator_a, row.generator_b)][row.rater] == row.answer


@pytest.mark.parametrize("question", list(FETV_QUESTIONS.values()))
def test_agreement_matches_packages_and_loops(reference: dict, result: dict, question: str) -> None:
    pairs = reference[question]
    raters = sorted({r for votes in pairs.values() for r in votes})
    keys = sorted(pairs)
    data = np.array([[CODE[pairs[k][r]] if r in pairs[k] else np.nan for k in keys] for r in raters], dtype=float)
    agreement = result["questions"][question]["agreement"]
    for level in ("nominal", "ordinal"):
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert agreement[f"krippendorff_alpha_{level}"]["value"] == pytest.approx(expected, abs=1e-10)
    table, _ = aggregate_raters(data.T.astype(int) + 1, n_cat=3)
    assert agreement["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-10)
    agree = total = 0
    for votes in pairs.values():
        for u, v in itertools.combinations(votes.values(), 2):
            agree += u == v
            total += 1
    assert agreement["percent_agreement"]["value"] == pytest.approx(agree / total, abs=1e-12)


@pytest.mark.parametrize("question", list(FETV_QUESTIONS.values()))
def test_bradley_terry_matches_choix_and_win_counts(reference: dict, result: dict, question: str) -> None:
    models = sorted({m for key in reference[question] for m in key[1:]})
    index = {m: i for i, m in enumerate(models)}
    data, wins = [], defaultdict(int)
    for (_, x, y), votes in reference[question].items():
        for answer in votes.values():
            if answer == "a":
                data += [(index[x], index[y])] * 2
                wins[x] += 1
            elif answer == "b":
                data += [(index[y], index[x])] * 2
                wins[y] += 1
            else:
                data += [(index[x], index[y]), (index[y], index[x])]
    theta = choix.ilsr_pairwise(len(models), data, tol=1e-12)
    expected = 1000 + 400 * (theta - theta.mean()) / np.log(10)
    ranking = result["questions"][question]["ranking"]
    assert ranking["identified"] and ranking["connected"]
    for item in ranking["items"]:
        assert item["rating"] == pytest.approx(expected[index[item["generator"]]], abs=1e-3)
        assert item["wins"] == wins[item["generator"]]
        assert item["ci_low"] < item["rating"] < item["ci_high"]


def test_alignment_matches_direct_computation(reference: dict, result: dict) -> None:
    scores = {(r["model"], r["idx"]): r for r in map(json.loads, open(FETV_DIR / "auto_scores.jsonl"))}
    question, metric = "text_match", "CLIPScore"
    deltas, humans, prefs = [], [], []
    for (idx, x, y), votes in reference[question].items():
        counts = {a: list(votes.values()).count(a) for a in ("a", "tie", "b")}
        top = max(counts.values())
        winners = [a for a, c in counts.items() if c == top]
        if len(winners) > 1:
            continue  # undecided
        deltas.append(scores[(x, idx)][metric] - scores[(y, idx)][metric])
        humans.append(winners[0])
        prefs.append((counts["a"] - counts["b"]) / len(votes))
    deltas = np.array(deltas)
    verdict = np.where(deltas > 0, "a", np.where(deltas < 0, "b", "tie"))
    res = result["questions"][question]["alignment"]["metrics"][metric]
    assert res["pairwise_accuracy"]["n"] == len(humans)
    assert res["pairwise_accuracy"]["value"] == pytest.approx(np.mean(verdict == np.array(humans)), abs=1e-12)
    assert res["kendall_tau_b"]["value"] == pytest.approx(stats.kendalltau(deltas, prefs).statistic, abs=1e-12)
    lo, hi = res["pairwise_accuracy"]["ci_low"], res["pairwise_accuracy"]["ci_high"]
    assert lo < res["pairwise_accuracy"]["value"] < hi
    json.dumps(result, allow_nan=False)
    assert result["warnings"] == []
