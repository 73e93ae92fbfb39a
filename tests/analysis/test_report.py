"""``analyze`` on edge cases: always defined results, JSON without NaN, reasons instead of numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.report import analyze
from tests.analysis.helpers import battles, judgments, random_judgments


def _json_ok(result: dict) -> dict:
    json.dumps(result, allow_nan=False)
    assert result["warnings"] == []
    return result


def test_empty_inputs() -> None:
    for df in (pd.DataFrame(), judgments([]).iloc[:0]):
        result = _json_ok(analyze(df))
        assert result["questions"] == {}
        assert result["summary"]["reason"] == "not enough data: no judgments"


def test_question_nobody_answered() -> None:
    result = _json_ok(analyze(battles(2, 1), questions=["q", "nobody"], bootstrap_rounds=20))
    nobody = result["questions"]["nobody"]
    assert nobody["n_judgments"] == 0 and "not enough data" in nobody["reason"]
    assert nobody["ranking"]["items"] == [] and nobody["agreement"]["percent_agreement"]["value"] is None


def test_one_rater() -> None:
    result = _json_ok(analyze(battles(3, 2, ties=1), bootstrap_rounds=20))
    agreement = result["questions"]["q"]["agreement"]
    for key in ("percent_agreement", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal", "fleiss_kappa"):
        assert agreement[key]["value"] is None
        assert agreement[key]["reason"] == "not enough data: 1 rater"
    per_rater = agreement["per_rater"][0]
    assert per_rater["majority_agreement"]["value"] is None and per_rater["majority_agreement"]["reason"]


def test_no_ties_and_all_ties() -> None:
    df = random_judgments(np.random.default_rng(0), n_pairs=50, questions=("q",), tie_rate=0.0)
    no_ties = _json_ok(analyze(df, bootstrap_rounds=50))["questions"]["q"]
    assert no_ties["answers"]["tie"] == 0 and no_ties["agreement"]["krippendorff_alpha_ordinal"]["value"] is not None
    all_ties = _json_ok(analyze(df.assign(answer="tie"), bootstrap_rounds=50))["questions"]["q"]
    alpha = all_ties["agreement"]["krippendorff_alpha_nominal"]
    assert alpha["value"] is None and "no variation" in alpha["reason"]
    assert all_ties["agreement"]["fleiss_kappa"]["value"] is None
    assert all_ties["agreement"]["percent_agreement"]["value"] == 1.0
    assert all(i["rating"] == pytest.approx(1000.0) for i in all_ties["ranking"]["items"])


def test_generator_that_never_wins_with_scores() -> None:
    df = pd.concat([battles(4, 0, a="A", b="B"), battles(3, 0, a="A", b="C"), battles(2, 1, a="B", b="C")])
    df["pair_id"] = range(len(df))
    scores = pd.DataFrame({"pair_id": df["pair_id"], "metric": "m", "value_a": 1.0, "value_b": 0.0})
    result = _json_ok(analyze(df, scores, bootstrap_rounds=50))["questions"]["q"]
    assert result["ranking"]["identified"] is False
    spearman = result["alignment"]["metrics"]["m"]["generator_spearman"]
    assert "note" in spearman


def test_missing_scores() -> None:
    result = _json_ok(analyze(battles(2, 1), None, bootstrap_rounds=10))
    assert result["questions"]["q"]["alignment"] == {"reason": "no metric scores", "metrics": {}}
    video_form = pd.DataFrame({"generator": ["A"], "prompt_id": [1], "metric": ["m"], "value": [0.5]})
    result = _json_ok(analyze(battles(2, 1), video_form, bootstrap_rounds=10))
    assert "prompt_id" in result["questions"]["q"]["alignment"]["reason"]
    unmatched = pd.DataFrame({"pair_id": [999], "metric": ["m"], "value_a": [1.0], "value_b": [0.0]})
    metric = _json_ok(analyze(battles(2, 1), unmatched, bootstrap_rounds=10))["questions"]["q"]["alignment"]
    assert metric["metrics"]["m"]["n_missing_score"] == 3
    assert metric["metrics"]["m"]["pairwise_accuracy"]["value"] is None


def test_deterministic_and_independent_of_other_questions() -> None:
    df = random_judgments(np.random.default_rng(1), n_pairs=100, questions=("q1", "q2"))
    both = _json_ok(analyze(df, bootstrap_rounds=100, seed=7))
    assert both == analyze(df, bootstrap_rounds=100, seed=7)
    alone = analyze(df[df["question"] == "q2"], bootstrap_rounds=100, seed=7)
    assert alone["questions"]["q2"] == both["questions"]["q2"]
    assert analyze(df, bootstrap_rounds=100, seed=8)["questions"] != both["questions"]


def test_output_keys_and_dawid_skene_option() -> None:
    df = random_judgments(np.random.default_rng(2), n_pairs=60, questions=("q",))
    result = _json_ok(analyze(df, bootstrap_rounds=20, dawid_skene=True))
    assert set(result) == {"schema_version", "parameters", "summary", "questions", "warnings"}
    q = result["questions"]["q"]
    assert set(q) >= {"win_rates", "ranking", "agreement", "labels", "dawid_skene", "alignment", "position_bias"}
    assert q["dawid_skene"]["converged"]
    assert result["summary"]["n_raters"] == 8 and result["summary"]["n_pairs"] == 60
