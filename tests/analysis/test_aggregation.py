"""Majority labels (splits stay undecided), per-pair agreement, Dawid–Skene."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.aggregation import majority_vote, pair_labels
from analysis.dawid_skene import dawid_skene
from tests.analysis.helpers import judgments


def test_majority_vote_keeps_exact_splits_undecided() -> None:
    counts = np.array([[2, 1, 0], [1, 1, 1], [0, 2, 2], [0, 0, 3], [0, 0, 0], [1, 0, 1], [0, 1, 0]])
    assert majority_vote(counts).tolist() == [0, -1, -1, 2, -1, -1, 1]
    # Reordering the categories must not change which items are undecided (no label-order tie-break).
    assert (majority_vote(counts[:, ::-1]) == -1).tolist() == (majority_vote(counts) == -1).tolist()


def test_pair_labels_columns_counts_and_agreement() -> None:
    df = judgments([
        (1, "x", "A", "B", "a"), (1, "y", "A", "B", "a"), (1, "z", "A", "B", "b"),
        (2, "x", "A", "B", "a"), (2, "y", "A", "B", "b"),
        (3, "x", "B", "C", "tie"),
    ])
    labels = pair_labels(df).set_index("pair_id")
    assert labels.loc[1, "label"] == "a"
    assert (labels.loc[1, ["votes_a", "votes_tie", "votes_b", "n"]].tolist()) == [2, 0, 1, 3]
    assert labels.loc[1, "agreement"] == pytest.approx(1 / 3)
    assert labels.loc[2, "label"] is None  # 1–1 split
    assert labels.loc[2, "agreement"] == 0
    assert pd.isna(labels.loc[3, "agreement"]) and labels.loc[3, "label"] == "tie"
    assert not labels.loc[3, "unanimous"] and not labels.loc[1, "unanimous"]
    assert labels.loc[3, "generator_a"] == "B"


def _synthetic_crowd(seed: int, n_items: int = 1500, per_item: int = 5):
    """4 good raters (85 % right), 3 adversarial (swap a and b), 3 random clickers."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    kinds = ["good"] * 4 + ["adversarial"] * 3 + ["random"] * 3
    items, raters, labels = [], [], []
    for i in range(n_items):
        for r in rng.choice(len(kinds), size=per_item, replace=False):
            if kinds[r] == "good":
                label = truth[i] if rng.random() < 0.85 else rng.integers(0, 3)
            elif kinds[r] == "adversarial":
                label = 2 - truth[i] if rng.random() < 0.9 else rng.integers(0, 3)
            else:
                label = rng.integers(0, 3)
            items.append(i)
            raters.append(r)
            labels.append(int(label))
    return truth, np.array(items), np.array(raters), np.array(labels)


def test_dawid_skene_beats_majority_with_adversarial_and_noisy_raters() -> None:
    truth, items, raters, labels = _synthetic_crowd(0)
    counts = np.zeros((truth.size, 3), dtype=int)
    np.add.at(counts, (items, labels), 1)
    mv = majority_vote(counts)
    ds = dawid_skene(items, raters, labels)
    assert ds.converged
    mv_acc = float((mv == truth).mean())  # undecided counts as wrong
    ds_acc = float((ds.labels == truth).mean())
    assert ds_acc > mv_acc + 0.1
    # The adversarial raters are found: their confusion puts a (0) mostly on b (2).
    assert all(ds.confusions[r, 0, 2] > 0.6 for r in (4, 5, 6))
    np.testing.assert_allclose(ds.posteriors.sum(axis=1), 1.0)


def test_dawid_skene_leaves_a_symmetric_item_undecided() -> None:
    # Two equally reliable raters who always disagree on item 2: no evidence either way.
    items = np.array([0, 0, 1, 1, 2, 2])
    raters = np.array([0, 1, 0, 1, 0, 1])
    labels = np.array([0, 0, 2, 2, 0, 2])
    res = dawid_skene(items, raters, labels, smoothing=1.0)
    assert res.labels[0] == 0 and res.labels[1] == 2
    assert res.labels[2] == -1


@pytest.mark.filterwarnings("ignore::Warning:crowdkit")  # crowd-kit 1.4.2 uses pandas keywords pandas 3 deprecates
def test_dawid_skene_agrees_with_crowd_kit() -> None:
    crowdkit = pytest.importorskip("crowdkit.aggregation")
    truth, items, raters, labels = _synthetic_crowd(1, n_items=600)
    ours = dawid_skene(items, raters, labels)
    frame = pd.DataFrame({"task": items, "worker": raters, "label": labels})
    theirs = crowdkit.DawidSkene(n_iter=500, tol=1e-8).fit_predict(frame).sort_index().to_numpy()
    decided = ours.labels >= 0
    assert (ours.labels[decided] == theirs[decided]).mean() > 0.98
    assert abs((ours.labels == truth).mean() - (theirs == truth).mean()) < 0.02


def test_pair_labels_with_dawid_skene_columns() -> None:
    df = judgments([(1, "x", "A", "B", "a"), (1, "y", "A", "B", "a"), (2, "x", "A", "B", "b"),
                    (2, "y", "A", "B", "b")])
    labels = pair_labels(df, dawid_skene_labels=True)
    assert {"ds_label", "ds_p_a", "ds_p_tie", "ds_p_b"} <= set(labels.columns)
    assert labels["ds_label"].tolist() == ["a", "b"]
