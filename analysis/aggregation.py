"""Labels per pair and question: majority vote (exact splits undecided), vote counts, agreement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.agreement import pair_agreement
from analysis.coding import (
    ANSWER_LABELS,
    EncodedJudgments,
    PairTable,
    QuestionData,
    encode_judgments,
    label_order,
    pair_table,
)
from analysis.dawid_skene import dawid_skene

UNDECIDED = -1


def majority_vote(counts: np.ndarray) -> np.ndarray:
    """Plurality label per item from an items × 3 (a, tie, b) count table.

    −1 where no votes or where the top count is shared (an exact split is undecided; it is never
    broken by label order).
    """
    c = np.asarray(counts)
    if c.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    cols = [c[:, j] for j in range(c.shape[1])]
    top = cols[0]
    for col in cols[1:]:
        top = np.maximum(top, col)
    n_top = sum((col == top).astype(np.int8) for col in cols)
    first = np.full(top.shape, -1, dtype=np.int64)
    for j in range(len(cols) - 1, -1, -1):
        first = np.where(cols[j] == top, j, first)
    return np.where((top > 0) & (n_top == 1), first, UNDECIDED)


def question_labels(table: PairTable) -> dict[str, np.ndarray]:
    """Per judged pair of one question: ``pair`` index, ``counts`` (pairs × a/tie/b), ``label``,
    ``agreement`` (share of agreeing rater pairs, NaN below 2 judgments) and ``unanimous``."""
    counts, m = table.counts, table.m
    top = np.maximum(np.maximum(counts[:, 0], counts[:, 1]), counts[:, 2]) if m.size else m
    return {
        "pair": table.pair,
        "counts": counts,
        "m": m,
        "label": majority_vote(counts),
        "agreement": pair_agreement(counts),
        "unanimous": (m >= 2) & (top == m),
    }


def label_summary(labels: dict[str, np.ndarray]) -> dict:
    """Dashboard summary of :func:`question_labels` (JSON-ready)."""
    label, m = labels["label"], labels["m"]
    multi = m >= 2
    return {
        "method": "majority vote (plurality); exact split = undecided",
        "n_pairs": int(label.size),
        "n_multi_rated": int(multi.sum()),
        "n_decided": int((label >= 0).sum()),
        "n_undecided": int((label < 0).sum()),
        "labels": {name: int((label == i).sum()) for i, name in enumerate(ANSWER_LABELS)},
        "n_unanimous": int(labels["unanimous"].sum()),
        "n_split": int((multi & ~labels["unanimous"]).sum()),
        "mean_pair_agreement": (float(np.mean(labels["agreement"][multi])) if multi.any() else None),
        "reason": None if label.size else "not enough data: no judgments",
    }


def dawid_skene_summary(q: QuestionData, labels: dict[str, np.ndarray], n_pairs: int, raters: np.ndarray) -> dict:
    """Dawid–Skene labels for one question compared with the majority (JSON-ready)."""
    if q.n == 0:
        return {"reason": "not enough data: no judgments"}
    res = dawid_skene(q.pair, q.rater, q.answer, n_items=n_pairs, n_raters=len(raters))
    ds = res.labels[labels["pair"]]
    both = (ds >= 0) & (labels["label"] >= 0)
    judged = np.bincount(q.rater, minlength=len(raters)) > 0
    used = [r for r in label_order(raters) if judged[r]]
    return {
        "n_iter": res.n_iter,
        "converged": res.converged,
        "labels": {name: int((ds == i).sum()) for i, name in enumerate(ANSWER_LABELS)},
        "n_undecided": int((ds < 0).sum()),
        "agreement_with_majority": float((ds[both] == labels["label"][both]).mean()) if both.any() else None,
        "per_rater_accuracy": [{"rater": raters[r], "value": float(np.diag(res.confusions[r]) @ res.priors)}
                               for r in used],
        "reason": None,
    }


def pair_labels(judgments: pd.DataFrame | EncodedJudgments, *, questions: Sequence[str] | None = None,
                dawid_skene_labels: bool = False) -> pd.DataFrame:
    """One row per judged (pair, question).

    Columns: ``pair_id``, ``question``, ``generator_a``, ``generator_b``, ``n``, ``votes_a``,
    ``votes_tie``, ``votes_b``, ``label`` ("a"/"tie"/"b", or None when undecided),
    ``agreement`` (nullable Float64: share of agreeing rater pairs; <NA> below 2 judgments),
    ``unanimous``; with ``dawid_skene_labels`` also ``ds_label``, ``ds_p_a``, ``ds_p_tie``, ``ds_p_b``.
    """
    enc = judgments if isinstance(judgments, EncodedJudgments) else encode_judgments(judgments, questions=questions)
    frames = []
    for key in enc.questions:
        q = enc.question(key)
        lab = question_labels(pair_table(q, enc.n_pairs))
        p = lab["pair"]
        frame = pd.DataFrame({
            "pair_id": enc.pair_ids[p],
            "question": key,
            "generator_a": [enc.generators[g] for g in enc.pair_generator_a[p]],
            "generator_b": [enc.generators[g] for g in enc.pair_generator_b[p]],
            "n": lab["m"],
            "votes_a": lab["counts"][:, 0],
            "votes_tie": lab["counts"][:, 1],
            "votes_b": lab["counts"][:, 2],
            "label": pd.Series([ANSWER_LABELS[i] if i >= 0 else None for i in lab["label"]], dtype=object),
            "agreement": pd.array(lab["agreement"], dtype="Float64"),
            "unanimous": lab["unanimous"],
        })
        frame["agreement"] = frame["agreement"].mask(np.isnan(lab["agreement"]))
        if dawid_skene_labels and q.n:
            res = dawid_skene(q.pair, q.rater, q.answer, n_items=enc.n_pairs, n_raters=len(enc.raters))
            frame["ds_label"] = pd.Series([ANSWER_LABELS[i] if i >= 0 else None for i in res.labels[p]], dtype=object)
            for i, name in enumerate(ANSWER_LABELS):
                frame[f"ds_p_{name}"] = res.posteriors[p, i]
        frames.append(frame)
    columns = ["pair_id", "question", "generator_a", "generator_b", "n", "votes_a", "votes_tie", "votes_b", "label",
               "agreement", "unanimous"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
