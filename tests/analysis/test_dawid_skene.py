"""Dawid–Skene's chunked, compact EM gives the textbook EM's numbers; a fitted model recomputes its
posteriors bit for bit; importing it loads neither scipy nor pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import analysis
from analysis import dawid_skene as ds_module
from analysis.dawid_skene import dawid_skene, dawid_skene_posteriors
from tests.analysis.helpers import REPO


def textbook_dawid_skene(item, rater, label, *, n_items, n_raters, kk=3, max_iter=500, tol=1e-5, smoothing=0.01):
    """The EM written out over dense items × classes arrays (the pre-chunking implementation)."""
    item, rater, label = (np.asarray(x, dtype=np.int64) for x in (item, rater, label))
    votes = np.bincount(item * kk + label, minlength=n_items * kk).reshape(n_items, kk).astype(float)
    has_votes = votes.sum(axis=1) > 0
    post = np.where(has_votes[:, None], votes / np.maximum(votes.sum(axis=1, keepdims=True), 1), 1.0 / kk)
    n_iter, converged = 0, False
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - reported
        priors = np.maximum(post[has_votes].mean(axis=0), 1e-12)
        conf = np.full((n_raters, kk, kk), smoothing)
        np.add.at(conf, (rater, slice(None), label), post[item])
        conf /= conf.sum(axis=2, keepdims=True)
        log_post = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_post, item, np.log(conf[rater, :, label]))
        new = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        new /= new.sum(axis=1, keepdims=True)
        change = np.abs(new - post).max()
        post = new
        if change < tol:
            converged = True
            break
    top = post.max(axis=1)
    shared = (np.abs(post - top[:, None]) <= 1e-12).sum(axis=1) > 1
    return post, conf, np.where(has_votes & ~shared, post.argmax(axis=1), -1), n_iter, converged


def _crowd(seed: int, *, n_items: int = 400, n_raters: int = 12, per_item: int = 4, idle_items: int = 5):
    """Good, adversarial and random raters; ``idle_items`` extra items have no judgment; shuffled."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    skill = rng.choice(["good", "adversarial", "random"], size=n_raters, p=[0.5, 0.25, 0.25])
    items, raters, labels = [], [], []
    for i in range(n_items):
        for r in rng.choice(n_raters, size=rng.integers(1, per_item + 1), replace=False):
            if skill[r] == "good" and rng.random() < 0.85:
                label = truth[i]
            elif skill[r] == "adversarial" and rng.random() < 0.8:
                label = 2 - truth[i]
            else:
                label = rng.integers(0, 3)
            items.append(i)
            raters.append(r)
            labels.append(label)
    order = rng.permutation(len(items))
    return (np.array(items)[order], np.array(raters)[order], np.array(labels)[order], n_items + idle_items, n_raters)


@pytest.mark.parametrize("chunk", [5, 64, 1 << 16])
def test_chunked_fit_equals_the_textbook_em(monkeypatch, chunk):
    # Chunks of 5 judgments end between items of up to 4 judgments; 1 << 16 is one chunk.
    monkeypatch.setattr(ds_module, "CHUNK_JUDGMENTS", chunk)
    item, rater, label, n_items, n_raters = _crowd(3)
    post, conf, labels, n_iter, converged = textbook_dawid_skene(item, rater, label, n_items=n_items,
                                                                 n_raters=n_raters)
    ours = dawid_skene(item.astype(np.int32), rater.astype(np.int16), label.astype(np.int8), n_items=n_items,
                       n_raters=n_raters)
    assert (ours.n_iter, ours.converged) == (n_iter, converged)
    np.testing.assert_allclose(ours.posteriors, post, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.confusions, conf, rtol=0, atol=1e-12)
    assert ours.labels.tolist() == labels.tolist()
    assert (ours.labels[-5:] == -1).all()  # items without judgments: undecided, with the priors
    np.testing.assert_allclose(ours.posteriors[-1], ours.priors / ours.priors.sum(), rtol=0, atol=1e-12)


def test_an_item_with_more_judgments_than_a_chunk(monkeypatch):
    monkeypatch.setattr(ds_module, "CHUNK_JUDGMENTS", 3)
    item = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3])
    rater = np.array([0, 1, 2, 3, 4, 5, 6, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 7])
    label = np.array([0, 0, 0, 1, 0, 2, 0, 2, 2, 2, 2, 2, 1, 2, 0, 2, 2, 1])
    post, _, labels, n_iter, _ = textbook_dawid_skene(item, rater, label, n_items=5, n_raters=8)
    ours = dawid_skene(item, rater, label, n_items=5, n_raters=8)
    assert ours.n_iter == n_iter and ours.labels.tolist() == labels.tolist()
    assert ours.labels[:3].tolist() == [0, 2, 2] and ours.labels[4] == -1
    np.testing.assert_allclose(ours.posteriors, post, rtol=0, atol=1e-12)


def test_posteriors_recomputed_from_the_model_are_bit_identical():
    item, rater, label, n_items, n_raters = _crowd(5)
    fit = dawid_skene(item, rater, label, n_items=n_items, n_raters=n_raters)
    # Items 100..249, renumbered from 0, their judgments in the order the fit was given them.
    keep = (item >= 100) & (item < 250)
    post, labels = dawid_skene_posteriors(item[keep] - 100, rater[keep], label[keep], priors=fit.priors,
                                          confusions=fit.confusions, n_items=150)
    assert np.array_equal(post, fit.posteriors[100:250])
    assert np.array_equal(labels, fit.labels[100:250])
    # Another order of an item's judgments may round differently, but not by more than rounding.
    shuffled = np.random.default_rng(0).permutation(np.flatnonzero(keep))
    again, _ = dawid_skene_posteriors(item[shuffled] - 100, rater[shuffled], label[shuffled], priors=fit.priors,
                                      confusions=fit.confusions, n_items=150)
    np.testing.assert_allclose(again, post, rtol=0, atol=1e-13)


def test_dawid_skene_without_judgments():
    fit = dawid_skene(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int8), n_items=3, n_raters=2)
    assert fit.labels.tolist() == [-1, -1, -1]
    np.testing.assert_allclose(fit.posteriors, 1 / 3)


def test_codes_out_of_range_are_refused():
    with pytest.raises(ValueError, match="label codes must be in 0..2, got 0..3"):
        dawid_skene(np.array([0, 1]), np.array([0, 0]), np.array([0, 3]))
    with pytest.raises(ValueError, match="item codes must be in 0..1"):
        dawid_skene(np.array([0, 2]), np.array([0, 0]), np.array([0, 1]), n_items=2)
    with pytest.raises(ValueError, match="parallel"):
        dawid_skene(np.array([0, 1]), np.array([0]), np.array([0, 1]))
    fit = dawid_skene(np.array([0, 1]), np.array([0, 1]), np.array([0, 2]))
    with pytest.raises(ValueError, match="rater codes must be in 0..1"):
        dawid_skene_posteriors(np.array([0]), np.array([2]), np.array([0]), priors=fit.priors,
                               confusions=fit.confusions, n_items=1)


def test_importing_dawid_skene_loads_neither_scipy_nor_pandas():
    code = ("import sys, analysis.dawid_skene; "
            "print(sorted(m for m in ('scipy', 'pandas', 'analysis.report') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_still_offers_its_public_names():
    from analysis import EncodedJudgments, analyze, encode_judgments, majority_vote, pair_labels  # noqa: PLC0415

    assert analyze.__module__ == "analysis.report" and pair_labels.__module__ == "analysis.aggregation"
    assert EncodedJudgments.__module__ == encode_judgments.__module__ == "analysis.coding"
    assert majority_vote is analysis.majority_vote
    assert set(analysis.__all__) <= set(dir(analysis))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        analysis.nonsense  # noqa: B018
