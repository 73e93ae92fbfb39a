"""Encoding judgments: validation, dropped rows, and input dtypes that must not change results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.coding import encode_judgments
from analysis.report import analyze
from tests.analysis.helpers import judgments, random_judgments


def test_invalid_rows_are_dropped_and_counted() -> None:
    df = judgments([
        (1, "x", "A", "B", "a"),
        (1, "x", "A", "B", "b"),      # duplicate of the row above: the last one wins
        (2, "x", "A", "A", "a"),      # same generator
        (3, "x", "A", "B", "left"),   # invalid answer
        (4, None, "A", "B", "a"),     # missing rater
        (1, "y", "A", "C", "a"),      # pair 1 is A vs B
        (5, "y", "A", "B", " TIE "),  # answers are case- and space-insensitive
    ])
    enc = encode_judgments(df)
    assert enc.dropped == {"missing_field": 1, "invalid_answer": 1, "same_generator": 1, "inconsistent_pair": 1,
                           "duplicate": 1}
    q = enc.question("q")
    assert q.n == 2
    kept = {(enc.pair_ids[p], enc.raters[r]): a for p, r, a in zip(q.pair, q.rater, q.answer, strict=True)}
    assert kept == {(1, "x"): 2, (5, "y"): 1}


def test_missing_required_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="answer"):
        encode_judgments(pd.DataFrame({"pair_id": [1], "rater": ["x"], "generator_a": ["A"], "generator_b": ["B"],
                                       "question": ["q"]}))


def test_question_selection_and_order() -> None:
    df = random_judgments(np.random.default_rng(0), n_pairs=10, questions=("q1", "q2"))
    enc = encode_judgments(df, questions=["q2", "nobody"])
    assert enc.questions == ["q2", "nobody"]
    assert enc.question("nobody").n == 0 and enc.question("q2").n == len(df) // 2


def test_string_categorical_and_integer_inputs_give_identical_results() -> None:
    df = random_judgments(np.random.default_rng(1), n_pairs=120, questions=("q1", "q2"))
    base = analyze(df, bootstrap_rounds=100)
    cat = df.astype({c: "category" for c in ("rater", "generator_a", "generator_b", "question", "answer")})
    assert analyze(cat, bootstrap_rounds=100)["questions"] == base["questions"]
    ints = df.assign(pair_id=df["pair_id"] * 7 + 1000, left_is_a=df["left_is_a"].astype("boolean"))
    assert analyze(ints, bootstrap_rounds=100)["questions"] == base["questions"]
    objects = df.assign(pair_id="p" + df["pair_id"].astype(str)).astype(object)
    assert analyze(objects, bootstrap_rounds=100)["questions"] == base["questions"]


def test_unused_categories_do_not_appear() -> None:
    df = judgments([(1, "x", "A", "B", "a")])
    df["generator_a"] = pd.Categorical(df["generator_a"], categories=["A", "Z"])
    df["question"] = pd.Categorical(df["question"], categories=["q", "unused"])
    enc = encode_judgments(df)
    assert enc.generators == ["A", "B"] and enc.questions == ["q"]
