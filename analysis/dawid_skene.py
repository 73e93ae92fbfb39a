"""Dawid–Skene (1979): labels weighted by each rater's estimated confusion matrix, fitted by EM.

Plain numpy (importing this module loads neither scipy nor pandas), so it scales to millions of
judgments in little memory: the judgments are kept sorted by item as compact codes (int32 item,
int16 rater × label where they fit: 6 bytes a judgment) and every EM pass walks them in chunks of
whole items (``take`` and ``bincount`` into buffers of one chunk), so a fit holds its inputs,
those codes, the posteriors (24 bytes an item) and a few megabytes. Unlike crowd-kit's
``DawidSkene`` (which returns the first label on an exact 50/50 posterior), an item whose top
posterior is shared is left undecided (label −1).

:func:`dawid_skene_posteriors` redoes the last E-step of a fit from its priors and confusion
matrices, for some of the items: given each item's judgments in the same order, it returns the
fit's posteriors bit for bit, so a caller may keep the (small) model instead of the posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Posteriors within this distance of an item's top one share the top (the item is undecided).
SHARED_TOP_ATOL = 1e-12
#: Judgments per chunk of an EM pass (a chunk ends between two items, so it may hold more).
CHUNK_JUDGMENTS = 1 << 16


@dataclass(frozen=True)
class DawidSkeneResult:
    posteriors: np.ndarray  # n_items × n_classes (a transposed view); items without judgments get the priors
    priors: np.ndarray  # n_classes
    confusions: np.ndarray  # n_raters × true class × given label (rows sum to 1)
    labels: np.ndarray  # argmax of posteriors, −1 where undecided or no judgments
    n_iter: int
    converged: bool


def _smallest_int(high: int) -> type[np.signedinteger]:
    """The smallest signed integer type holding ``0..high``."""
    for kind in (np.int16, np.int32):
        if high <= np.iinfo(kind).max:
            return kind
    return np.int64


def _e_step(item: np.ndarray, rater_label: np.ndarray, log_priors: np.ndarray, log_conf: list[np.ndarray],
            n_items: int, buffer: np.ndarray | None = None) -> np.ndarray:
    """Posteriors, class-major (n_classes × n_items), of items ``0..n_items-1`` from the model.

    ``item`` and ``rater_label`` (rater · n_classes + given label) are intp, one entry per
    judgment; ``log_conf[true]`` is log P(given label | true class) by rater_label. Each item's
    log posterior is summed by ``bincount`` in the order of its judgments: whatever other items
    are in the call, the same judgments in the same order give the same bits.
    """
    kk = log_priors.size
    post = np.empty((kk, n_items))
    for true in range(kk):
        # mode="clip": with mode="raise", take would copy into a fresh array first (the codes are valid).
        weights = np.take(log_conf[true], rater_label, out=buffer, mode="clip")
        post[true] = np.bincount(item, weights=weights, minlength=n_items)
        post[true] += log_priors[true]
    post -= post.max(axis=0)
    np.exp(post, out=post)
    post /= post.sum(axis=0)
    return post


def _log_model(priors: np.ndarray, confusions: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    log_conf = np.log(confusions)
    return np.log(priors), [np.ascontiguousarray(log_conf[:, true, :]).ravel() for true in range(priors.size)]


def _labels(post: np.ndarray, has_votes: np.ndarray) -> np.ndarray:
    """Top class per item of class-major posteriors; −1 without votes or where the top is shared."""
    if not post.shape[1]:
        return np.empty(0, dtype=np.int64)
    top = post.max(axis=0)
    n_top = np.zeros(post.shape[1], dtype=np.int8)
    for row in post:
        n_top += np.abs(row - top) <= SHARED_TOP_ATOL
    return np.where(has_votes & (n_top == 1), post.argmax(axis=0), -1).astype(np.int64)


def _check_codes(item: np.ndarray, rater: np.ndarray, label: np.ndarray, n_items: int, n_raters: int,
                 n_classes: int) -> None:
    """ValueError unless the arrays are parallel and their codes in range (the passes below index
    with them without checking)."""
    if not item.shape == rater.shape == label.shape or item.ndim != 1:
        raise ValueError(f"dawid_skene: item, rater and label must be parallel 1-d arrays, got shapes "
                         f"{item.shape}, {rater.shape}, {label.shape}")
    for name, values, high in (("item", item, n_items), ("rater", rater, n_raters), ("label", label, n_classes)):
        if values.size and (int(values.min()) < 0 or int(values.max()) >= high):
            raise ValueError(f"dawid_skene: {name} codes must be in 0..{high - 1}, got {values.min()}..{values.max()}")


def _chunks(item: np.ndarray, n_items: int, size: int) -> list[tuple[int, int, int, int]]:
    """``(first item, end item, first judgment, end judgment)`` of consecutive chunks covering items
    ``0..n_items-1`` and the judgments (sorted by item) of about ``size`` judgments each."""
    cuts = item[size::size].astype(np.int64)  # a chunk starts with the item of every size-th judgment
    bounds = np.unique(np.concatenate(([0], cuts, [n_items])))
    starts = np.searchsorted(item, bounds)
    return [(int(bounds[i]), int(bounds[i + 1]), int(starts[i]), int(starts[i + 1])) for i in range(bounds.size - 1)]


def dawid_skene(item: np.ndarray, rater: np.ndarray, label: np.ndarray, *, n_items: int | None = None,
                n_raters: int | None = None, n_classes: int = 3, max_iter: int = 500, tol: float = 1e-5,
                smoothing: float = 0.01) -> DawidSkeneResult:
    """EM for the Dawid–Skene model.

    ``item``, ``rater``, ``label`` are parallel integer arrays (one entry per judgment; labels in
    ``0..n_classes-1``), in any order (judgments sorted by item save a copy). Initialised from
    vote shares (soft majority vote); ``smoothing`` is a pseudo-count added to every confusion
    cell so a rater's unseen labels keep a small probability. Stops when no posterior moves more
    than ``tol``.
    """
    item, rater, label = (np.asarray(x) for x in (item, rater, label))
    n_items = int(item.max()) + 1 if n_items is None else n_items
    n_raters = int(rater.max()) + 1 if n_raters is None else n_raters
    kk = n_classes
    _check_codes(item, rater, label, n_items, n_raters, kk)
    # Compact codes: the fit keeps them for all its passes, next to the caller's arrays.
    item = np.asarray(item, dtype=_smallest_int(max(n_items - 1, 0)))
    rater_label = np.array(rater, dtype=_smallest_int(n_raters * kk - 1))  # rater · kk + given label
    rater_label *= kk
    rater_label += label
    if item.size > 1 and not bool((item[1:] >= item[:-1]).all()):
        # Sorted stably, so every item keeps the order of its judgments (and its sums their bits).
        order = np.argsort(item, kind="stable")
        item, rater_label = item[order], rater_label[order]
        del order
    chunks = _chunks(item, n_items, CHUNK_JUDGMENTS)
    buffer = np.empty(max((end - start for _, _, start, end in chunks), default=0))

    def codes(first: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's item (from 0) and rater_label codes, as the intp ``take`` and ``bincount`` use."""
        local = item[start:end].astype(np.intp)
        local -= first
        return local, rater_label[start:end].astype(np.intp)

    # Start from vote shares: soft majority vote.
    post = np.full((kk, n_items), 1.0 / kk)
    has_votes = np.zeros(n_items, dtype=bool)
    for first, stop, start, end in chunks:
        local, bins = codes(first, start, end)
        local *= kk
        local += bins % kk
        votes = np.bincount(local, minlength=(stop - first) * kk).reshape(stop - first, kk)
        n_votes = votes.sum(axis=1)
        has_votes[first:stop] = n_votes > 0
        for true in range(kk):
            np.divide(votes[:, true], np.maximum(n_votes, 1), out=post[true, first:stop], where=n_votes > 0)
    any_votes, all_voted = bool(has_votes.any()), bool(has_votes.all())
    converged = False
    n_iter = 0
    priors = np.full(kk, 1.0 / kk)
    conf = np.full((n_raters, kk, kk), 1.0 / kk)
    for n_iter in range(1, max_iter + 1):  # noqa: B007 — n_iter is reported
        # M-step: class priors and each rater's confusion matrix from the current posteriors.
        if any_votes:
            priors = np.array([(post[true] if all_voted else post[true][has_votes]).mean() for true in range(kk)])
        else:
            priors = np.full(kk, 1.0 / kk)
        priors = np.maximum(priors, 1e-12)
        counts = np.zeros((kk, n_raters * kk))
        for first, stop, start, end in chunks:
            local, bins = codes(first, start, end)
            weights = buffer[:end - start]
            for true in range(kk):
                np.take(post[true, first:stop], local, out=weights, mode="clip")  # P(judged item is of class true)
                counts[true] += np.bincount(bins, weights=weights, minlength=n_raters * kk)
        conf = np.full((n_raters, kk, kk), smoothing)
        for true in range(kk):
            conf[:, true, :] += counts[true].reshape(n_raters, kk)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step: posterior over the true class of every item, chunk by chunk, in place.
        log_priors, log_conf = _log_model(priors, conf)
        change = 0.0
        for first, stop, start, end in chunks:
            local, bins = codes(first, start, end)
            new = _e_step(local, bins, log_priors, log_conf, stop - first, buffer[:end - start])
            old = post[:, first:stop]
            if new.size:
                change = max(change, float(np.abs(new - old).max()))
            old[...] = new
        if change < tol:
            converged = True
            break
    return DawidSkeneResult(post.T, priors, conf, _labels(post, has_votes), n_iter, converged)


def dawid_skene_posteriors(item: np.ndarray, rater: np.ndarray, label: np.ndarray, *, priors: np.ndarray,
                           confusions: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors (items × classes, a transposed view) and labels of items ``0..n_items-1`` under a
    fitted model (``priors`` and ``confusions`` of a :class:`DawidSkeneResult`).

    Given each item's judgments in the order the fit had them (other items' judgments may be
    left out, and items renumbered), they equal the fit's ``posteriors`` and ``labels`` bit for
    bit. Items without judgments get the priors and label −1.
    """
    item, rater, label = (np.asarray(x) for x in (item, rater, label))
    kk = priors.size
    _check_codes(item, rater, label, n_items, confusions.shape[0], kk)
    item = item.astype(np.intp, copy=False)
    rater_label = np.array(rater, dtype=np.intp)
    rater_label *= kk
    rater_label += label
    log_priors, log_conf = _log_model(priors, confusions)
    post = _e_step(item, rater_label, log_priors, log_conf, n_items)
    has_votes = np.bincount(item, minlength=n_items) > 0
    return post.T, _labels(post, has_votes)
