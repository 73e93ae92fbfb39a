"""``analyze``: everything the dashboard shows, as one JSON-serialisable dict."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from analysis.aggregation import dawid_skene_summary, label_summary, question_labels
from analysis.agreement import agreement_report
from analysis.alignment import generator_alignment, generator_means, metric_alignment
from analysis.bias import position_bias
from analysis.coding import ANSWER_LABELS, EncodedJudgments, encode_judgments, pair_table
from analysis.jsonable import to_jsonable
from analysis.ranking import Outcomes, bradley_terry, win_rate_report
from analysis.scores import PairScores, align_scores

SCHEMA_VERSION = 1


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A stream per (seed, question, metric): results for a question do not depend on the others."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _peak_rss_mb() -> float | None:
    try:
        import resource  # Unix only; profiling is optional
    except ImportError:  # pragma: no cover
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


class _Timer:
    """Accumulates ``{stage: {"seconds", "peak_rss_mb"}}`` into ``sink`` when one is given."""

    def __init__(self, sink: dict[str, dict[str, float | None]] | None) -> None:
        self.sink = sink

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sink is not None:
                entry = self.sink.setdefault(stage, {"seconds": 0.0, "peak_rss_mb": None})
                entry["seconds"] = float(entry["seconds"] or 0.0) + time.perf_counter() - start
                entry["peak_rss_mb"] = _peak_rss_mb()


def _threshold(tie_threshold: float | Mapping[str, float], metric: str) -> float:
    if isinstance(tie_threshold, Mapping):
        return float(tie_threshold.get(metric, 0.0))
    return float(tie_threshold)


def _question_report(enc: EncodedJudgments, key: str, scores: PairScores | None, scores_reason: str | None, *,
                     bootstrap_rounds: int, seed: int, tie_threshold: float | Mapping[str, float],
                     dawid_skene: bool, timer: _Timer) -> dict:
    q = enc.question(key)
    with timer("labels"):
        table = pair_table(q, enc.n_pairs)
    answers = np.bincount(q.answer, minlength=3)
    report: dict = {
        "n_judgments": q.n,
        "n_pairs": int(table.pair.size),
        "n_raters": int(np.count_nonzero(np.bincount(q.rater, minlength=len(enc.raters)))),
        "answers": {name: int(answers[i]) for i, name in enumerate(ANSWER_LABELS)},
        "reason": None if q.n else "not enough data: no judgments for this question",
    }
    with timer("win rates + Bradley-Terry"):
        outcomes = Outcomes.from_arrays(enc.pair_generator_a[q.pair], enc.pair_generator_b[q.pair],
                                        q.answer.astype(np.int64), enc.generators)
        report["win_rates"] = win_rate_report(outcomes)
        report["ranking"] = bradley_terry(outcomes, bootstrap_rounds=bootstrap_rounds, rng=_rng(seed, key))
    with timer("agreement"):
        report["agreement"] = agreement_report(q, table, enc.raters)
    with timer("labels"):
        labels = question_labels(table)
        report["labels"] = label_summary(labels)
    if dawid_skene:
        with timer("dawid-skene"):
            report["dawid_skene"] = dawid_skene_summary(q, labels, enc.n_pairs, enc.raters)
    with timer("alignment"):
        report["alignment"] = _alignment(enc, key, labels, report["ranking"], scores, scores_reason,
                                         bootstrap_rounds=bootstrap_rounds, seed=seed, tie_threshold=tie_threshold)
    with timer("position bias"):
        report["position_bias"] = position_bias(q, enc.raters)
    return report


def _alignment(enc: EncodedJudgments, key: str, labels: dict[str, np.ndarray], ranking: dict,
               scores: PairScores | None, scores_reason: str | None, *, bootstrap_rounds: int, seed: int,
               tie_threshold: float | Mapping[str, float]) -> dict:
    if scores is None:
        return {"reason": scores_reason, "metrics": {}}
    if labels["pair"].size == 0:
        return {"reason": "not enough data: no judgments for this question", "metrics": {}}
    ratings = {item["generator"]: item["rating"] for item in ranking["items"]}
    metrics = {}
    for name in scores.metrics:
        va, vb = scores.value_a[name], scores.value_b[name]
        result = metric_alignment(labels, va, vb, tie_threshold=_threshold(tie_threshold, name),
                                  bootstrap_rounds=bootstrap_rounds, rng=_rng(seed, key, name),
                                  orders=scores.orders(name))
        means = generator_means(labels["pair"], enc.pair_generator_a, enc.pair_generator_b, va, vb,
                                len(enc.generators))
        result["generator_spearman"] = generator_alignment(means, enc.generators, ratings)
        if not ranking["identified"] and ratings:
            result["generator_spearman"]["note"] = "ratings have no MLE (kept finite by a weak prior); see ranking"
        result["higher_is_better"] = scores.higher_is_better[name]
        metrics[name] = result
    return {"reason": None, "metrics": metrics}


def analyze(judgments: pd.DataFrame, scores: pd.DataFrame | None = None, *, questions: Sequence[str] | None = None,
            bootstrap_rounds: int = 1000, seed: int = 0, tie_threshold: float | Mapping[str, float] = 0.0,
            dawid_skene: bool = False, profile: dict[str, dict[str, float | None]] | None = None) -> dict:
    """Analyse judgments (and optionally metric scores) for the dashboard.

    See :mod:`analysis` for the input columns and the output keys. ``questions`` selects and
    orders the questions (default: all, in order of first appearance). ``tie_threshold`` is
    the metric tie band t (one value, or per metric name). Deterministic for a given ``seed``;
    each question (and metric) draws from its own stream, so its numbers do not depend on which
    other questions are analysed. ``profile``, if given, receives
    ``{stage: {"seconds", "peak_rss_mb"}}`` (for benchmarks). Never returns NaN: a number that
    cannot be computed is None next to a ``reason``. Raises ValueError for bad arguments or
    judgments without the required columns.
    """
    if bootstrap_rounds < 0:
        raise ValueError("bootstrap_rounds must be >= 0")
    timer = _Timer(profile)
    with timer("encode"):
        enc = encode_judgments(judgments, questions=questions)
    with timer("align scores"):
        pair_scores, scores_reason = align_scores(scores, enc)
    per_question = {
        key: _question_report(enc, key, pair_scores, scores_reason, bootstrap_rounds=bootstrap_rounds, seed=seed,
                              tie_threshold=tie_threshold, dawid_skene=dawid_skene, timer=timer)
        for key in enc.questions
    }
    n_kept = sum(enc.question(k).n for k in enc.questions)
    raters_used = np.zeros(len(enc.raters), dtype=bool)
    pairs_used = np.zeros(enc.n_pairs, dtype=bool)
    for k in enc.questions:
        raters_used[enc.question(k).rater] = True
        pairs_used[enc.question(k).pair] = True
    result = {
        "schema_version": SCHEMA_VERSION,
        "parameters": {"bootstrap_rounds": int(bootstrap_rounds), "seed": int(seed),
                       "tie_threshold": dict(tie_threshold) if isinstance(tie_threshold, Mapping)
                       else float(tie_threshold),
                       "dawid_skene": bool(dawid_skene), "coding": "A = -1, tie = 0, B = +1"},
        "summary": {
            "n_rows": enc.n_rows,
            "n_answers": n_kept,
            "dropped": enc.dropped,
            "n_pairs": int(pairs_used.sum()),
            "n_raters": int(raters_used.sum()),
            "generators": enc.generators,
            "questions": enc.questions,
            "metrics": pair_scores.metrics if pair_scores else [],
            "reason": None if n_kept else "not enough data: no judgments",
        },
        "questions": per_question,
    }
    problems: list[str] = []
    with timer("serialise"):
        clean = to_jsonable(result, problems)
    clean["warnings"] = [f"non-finite number replaced by None at {p}" for p in problems]
    return clean
