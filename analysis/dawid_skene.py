"""Dawid–Skene (1979): labels weighted by each rater's estimated confusion matrix, fitted by EM.

Plain numpy; one EM iteration is a few ``bincount`` passes over the judgments, so it scales to
millions of them. Unlike crowd-kit's ``DawidSkene`` (which returns the first label on an exact
50/50 posterior), an item whose top posterior is shared is left undecided (label −1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DawidSkeneResult:
    posteriors: np.ndarray  # n_items × n_classes; rows of items without judgments are the priors
    priors: np.ndarray  # n_classes
    confusions: np.ndarray  # n_raters × true class × given label (rows sum to 1)
    labels: np.ndarray  # argmax of posteriors, −1 where undecided or no judgments
    n_iter: int
    converged: bool


def dawid_skene(item: np.ndarray, rater: np.ndarray, label: np.ndarray, *, n_items: int | None = None,
                n_raters: int | None = None, n_classes: int = 3, max_iter: int = 500, tol: float = 1e-5,
                smoothing: float = 0.01) -> DawidSkeneResult:
    """EM for the Dawid–Skene model.

    ``item``, ``rater``, ``label`` are parallel integer arrays (one entry per judgment; labels in
    ``0..n_classes-1``). Initialised from vote shares (soft majority vote); ``smoothing`` is a
    pseudo-count added to every confusion cell so a rater's unseen labels keep a small
    probability. Stops when no posterior moves more than ``tol``.
    """
    item, rater, label = (np.asarray(x, dtype=np.int64) for x in (item, rater, label))
    n_items = int(item.max()) + 1 if n_items is None else n_items
    n_raters = int(rater.max()) + 1 if n_raters is None else n_raters
    kk = n_classes
    votes = np.bincount(item * kk + label, minlength=n_items * kk).reshape(n_items, kk).astype(float)
    has_votes = votes.sum(axis=1) > 0
    post = np.where(has_votes[:, None], votes / np.maximum(votes.sum(axis=1, keepdims=True), 1), 1.0 / kk)
    rater_label = rater * kk + label  # bin of (rater, given label)
    cell = rater * kk * kk + label  # flat index of conf[rater, 0, label]; + true·kk for other classes
    converged = False
    n_iter = 0
    priors = np.full(kk, 1.0 / kk)
    conf = np.full((n_raters, kk, kk), 1.0 / kk)
    for n_iter in range(1, max_iter + 1):  # noqa: B007 — n_iter is reported
        # M-step: class priors and each rater's confusion matrix from the current posteriors.
        priors = post[has_votes].mean(axis=0) if has_votes.any() else np.full(kk, 1.0 / kk)
        priors = np.maximum(priors, 1e-12)
        conf = np.full((n_raters, kk, kk), smoothing)
        w = post[item]  # judgments × true class
        for true in range(kk):
            conf[:, true, :] += np.bincount(rater_label, weights=w[:, true],
                                            minlength=n_raters * kk).reshape(n_raters, kk)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step: posterior over the true class of every item.
        log_conf = np.log(conf).ravel()
        log_post = np.tile(np.log(priors), (n_items, 1))
        for true in range(kk):
            log_post[:, true] += np.bincount(item, weights=log_conf.take(cell + true * kk), minlength=n_items)
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        change = float(np.abs(new - post).max()) if new.size else 0.0
        post = new
        if change < tol:
            converged = True
            break
    top = post.max(axis=1, initial=0.0) if post.size else np.empty(0)
    shared = (np.isclose(post, top[:, None], rtol=0, atol=1e-12)).sum(axis=1) > 1
    labels = np.where(has_votes & ~shared, post.argmax(axis=1), -1)
    return DawidSkeneResult(post, priors, conf, labels.astype(np.int64), n_iter, converged)
