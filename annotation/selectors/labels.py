"""Judgments as an analysis DataFrame, and labels per pair and question.

``judgments_frame`` is the one place that turns stored judgments into the long layout that
:mod:`analysis` reads (one row per pair, rater and question). It reads the project in one
query, as Arrow batches (no Python object per judgment), with integer ids and categorical
names, so a million judgments take a few seconds and tens of megabytes.

Gold pairs (``Pair.is_gold``) are measurement instruments shown to many raters, not data: they
are left out of the analysis input, the labels and the labels and preference exports (raw
exports and the judgments feed keep them, marked ``is_gold``). ``labels_frame`` counts votes in
the database (:mod:`annotation.exports.aggregation`), like the exports, so both give the same
labels as ``analysis.pair_labels`` without loading the judgments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.core.cache import cache
from django.db.models import Count, Max, QuerySet
from django.db.models.fields.json import KeyTextTransform

from annotation.exports.aggregation import (
    LabelRows,
    batch_label_rows,
    counted_pairs_sql,
    counts_schema,
    dawid_skene_tables,
    vote_counts,
)
from annotation.exports.arrow_source import query_batches, select_columns, sql_batches
from annotation.models import Generator, Judgment, Membership, Pair, Question

ANSWER_CATEGORIES = ["a", "tie", "b"]
AGGREGATIONS = ("majority", "dawid_skene")
#: Seconds a computed labels table stays cached (its key changes whenever judgments change).
LABELS_CACHE_SECONDS = 24 * 3600


def question_keys(*, project_id: int) -> list[str]:
    return list(Question.objects.filter(project_id=project_id).values_list("key", flat=True))


def excluded_rater_ids(*, project_id: int) -> list[int]:
    """Raters whose judgments are kept but left out of analysis, labels and exports."""
    return sorted(
        Membership.objects.filter(project_id=project_id, excluded=True).values_list("user_id", flat=True)
    )


def judgments_stamp(*, project_id: int) -> str:
    """Changes whenever the project's judgments, excluded raters, rubric or gold pairs change
    (cache keys). Gold pairs enter as their ids and answers (a handful of rows), so marking or
    unmarking one changes the stamp although no judgment changed."""
    agg = Judgment.objects.filter(project_id=project_id).aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    excluded = excluded_rater_ids(project_id=project_id)
    keys = question_keys(project_id=project_id)
    gold = list(
        Pair.objects.filter(project_id=project_id, is_gold=True).order_by("id").values_list("id", "gold_answers")
    )
    gold_text = json.dumps(gold, sort_keys=True, separators=(",", ":"))
    raw = f"{agg['n']}|{agg['top']}|{agg['last'].isoformat() if agg['last'] else ''}|{excluded}|{keys}|{gold_text}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def label_judgments(
    *, project_id: int, include_excluded: bool = False, generators: Sequence[str] = (), include_gold: bool = False
) -> QuerySet[Judgment]:
    """The judgments that analysis and labels count: the project's, without those of raters marked
    excluded (unless ``include_excluded``) and of gold pairs (unless ``include_gold``); with
    ``generators`` (names), only pairs of two of them."""
    qs = Judgment.objects.filter(project_id=project_id)
    if not include_excluded:
        excluded = excluded_rater_ids(project_id=project_id)
        if excluded:
            qs = qs.exclude(rater_id__in=excluded)
    if not include_gold:
        qs = qs.filter(pair__is_gold=False)
    if generators:
        qs = qs.filter(pair__generator_a__name__in=generators, pair__generator_b__name__in=generators)
    return qs


def labelled_pairs(*, project_id: int, generators: Sequence[str] = ()) -> QuerySet[Pair]:
    """The pairs that get labels: the project's pairs but gold ones; with ``generators``, only pairs
    of two of them."""
    qs = Pair.objects.filter(project_id=project_id, is_gold=False)
    if generators:
        qs = qs.filter(generator_a__name__in=generators, generator_b__name__in=generators)
    return qs


def _codes(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in the sorted array ``ids`` (every value is present)."""
    return np.searchsorted(ids, values) if ids.size else np.zeros(values.size, np.int64)


def _gold_codes(project_id: int, key: str, pairs: np.ndarray) -> np.ndarray:
    gold = np.full(pairs.size, -1, dtype=np.int8)
    expected = {
        pid: answers.get(key)
        for pid, answers in Pair.objects.filter(project_id=project_id, is_gold=True).values_list("id", "gold_answers")
    }
    expected = {pid: a[0] if isinstance(a, list) else a for pid, a in expected.items()
                if a and (not isinstance(a, list) or len(a) == 1)}
    if not expected:
        return gold
    ids = np.array(sorted(expected), dtype=np.int64)
    codes = np.array([ANSWER_CATEGORIES.index(expected[i]) if expected[i] in ANSWER_CATEGORIES else -1 for i in ids],
                     dtype=np.int8)
    pos = np.searchsorted(ids, pairs)
    pos = np.minimum(pos, ids.size - 1)
    hit = ids[pos] == pairs
    gold[hit] = codes[pos[hit]]
    return gold


def judgments_frame(
    *,
    project_id: int,
    questions: Sequence[str],
    include_excluded: bool = False,
    generators: Sequence[str] = (),
    with_context: bool = False,
    include_gold: bool = False,
) -> pd.DataFrame:
    """The project's judgments for ``questions`` in :mod:`analysis`'s long layout.

    Columns: ``pair_id`` (int), ``rater`` (user id), ``generator_a``, ``generator_b``,
    ``question``, ``answer`` (categoricals); with ``with_context`` also ``prompt_id`` (the Prompt
    pk, to match metric scores), ``left_is_a`` (nullable boolean) and ``gold`` (categorical: the
    expected answer, NaN when not a gold pair or with several accepted answers). Judgments of
    excluded raters are left out unless ``include_excluded``, judgments of gold pairs unless
    ``include_gold`` (they measure raters, they are not data; ``gold`` is then NaN throughout);
    ``generators`` keeps only pairs of two listed generators (names). A judgment without an
    answer to a question gives no row for it.
    """
    questions = list(questions)
    columns: dict[str, Any] = {
        "pair_id": "pair_id",
        "rater": "rater_id",
        "generator_a": "pair__generator_a_id",
        "generator_b": "pair__generator_b_id",
    }
    fields = [pa.field("pair_id", pa.int64()), pa.field("rater", pa.int64()),
              pa.field("generator_a", pa.int64()), pa.field("generator_b", pa.int64())]
    if with_context:
        columns.update(prompt_id="pair__prompt_id", left_is_a="left_is_a")
        fields += [pa.field("prompt_id", pa.int64()), pa.field("left_is_a", pa.bool_())]
    for index, key in enumerate(questions):
        columns[f"q{index}"] = KeyTextTransform(key, "answers")
        fields.append(pa.field(f"q{index}", pa.string()))
    schema = pa.schema(fields)
    qs = select_columns(
        label_judgments(project_id=project_id, include_excluded=include_excluded, generators=generators,
                        include_gold=include_gold).order_by(),
        columns,
    )
    names = dict(Generator.objects.filter(project_id=project_id).values_list("id", "name"))
    gen_ids = np.array(sorted(names), dtype=np.int64)
    gen_names = [names[i] for i in gen_ids]

    # Each batch is reduced at once to compact numpy arrays (generators as small codes, answers
    # as int8 categories), so peak memory is the result plus one batch, not the Arrow table.
    chunks: list[dict[str, np.ndarray]] = []
    for batch in query_batches(qs, schema):
        chunk: dict[str, np.ndarray] = {
            "pair_id": batch.column("pair_id").to_numpy(),
            "rater": batch.column("rater").to_numpy(),
            "generator_a": _codes(batch.column("generator_a").to_numpy(), gen_ids).astype(np.int32),
            "generator_b": _codes(batch.column("generator_b").to_numpy(), gen_ids).astype(np.int32),
        }
        if with_context:
            left = batch.column("left_is_a")
            chunk["prompt_id"] = batch.column("prompt_id").to_numpy()
            chunk["left_values"] = left.fill_null(False).to_numpy(zero_copy_only=False)
            chunk["left_mask"] = left.is_null().to_numpy(zero_copy_only=False)
        for index in range(len(questions)):
            encoded = pc.dictionary_encode(batch.column(f"q{index}"))
            lookup = np.array([ANSWER_CATEGORIES.index(v) if v in ANSWER_CATEGORIES else -1
                               for v in encoded.dictionary.to_pylist()] + [-1], dtype=np.int8)
            chunk[f"q{index}"] = lookup[encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)]
        chunks.append(chunk)
    dtypes = {"pair_id": np.int64, "rater": np.int64, "generator_a": np.int32, "generator_b": np.int32}
    if with_context:
        dtypes.update(prompt_id=np.int64, left_values=bool, left_mask=bool)
    base = {name: np.concatenate([c[name] for c in chunks]) if chunks else np.empty(0, dtype)
            for name, dtype in dtypes.items()}
    answers = [np.concatenate([c[f"q{i}"] for c in chunks]) if chunks else np.empty(0, np.int8)
               for i in range(len(questions))]
    del chunks

    parts: list[dict[str, np.ndarray]] = []
    for index, key in enumerate(questions):
        answer = answers[index]
        keep = answer >= 0
        everything = bool(keep.all())
        part = {name: values if everything else values[keep] for name, values in base.items()}
        part["answer"] = answer if everything else answer[keep]
        part["question"] = np.full(int(keep.sum()), index, dtype=np.int16)
        if with_context:
            part["gold"] = (_gold_codes(project_id, key, part["pair_id"]) if include_gold
                            else np.full(part["pair_id"].size, -1, dtype=np.int8))
        parts.append(part)
    del base, answers

    def cat(name: str, dtype: Any) -> np.ndarray:
        if len(parts) == 1:
            return parts[0][name]
        return np.concatenate([p[name] for p in parts]) if parts else np.empty(0, dtype=dtype)

    pair_id = cat("pair_id", np.int64)
    frame = pd.DataFrame({
        "pair_id": pair_id,
        "rater": cat("rater", np.int64),
        "generator_a": pd.Categorical.from_codes(cat("generator_a", np.int32), categories=gen_names)
        if gen_names else pd.Categorical([]),
        "generator_b": pd.Categorical.from_codes(cat("generator_b", np.int32), categories=gen_names)
        if gen_names else pd.Categorical([]),
        "question": pd.Categorical.from_codes(cat("question", np.int16), categories=questions)
        if questions else pd.Categorical([]),
        "answer": pd.Categorical.from_codes(cat("answer", np.int8), categories=ANSWER_CATEGORIES),
    })
    if with_context:
        frame["prompt_id"] = cat("prompt_id", np.int64)
        frame["left_is_a"] = pd.arrays.BooleanArray(cat("left_values", bool), cat("left_mask", bool))
        frame["gold"] = pd.Categorical.from_codes(cat("gold", np.int8), categories=ANSWER_CATEGORIES)
    return frame


def label_count_batches(
    *,
    project_id: int,
    questions: Sequence[str],
    pair_columns: Mapping[str, Any],
    pair_schema: pa.Schema,
    aggregation: str = "majority",
    include_excluded: bool = False,
    generators: Sequence[str] = (),
) -> Iterator[tuple[pa.RecordBatch, LabelRows]]:
    """Labelled pairs in pair id order, batch by batch, with bounded memory: each batch of
    ``pair_columns`` (name -> field path of Pair, the pair id first; ``pair_schema`` types them)
    and the judgment counts (see :func:`annotation.exports.aggregation.counts_schema`), with its
    label rows. Lazy: nothing is read before the first batch; Dawid–Skene is fitted then.

    The votes are those of :func:`label_judgments`; pairs as :func:`labelled_pairs`, so gold pairs
    and, with ``generators``, other pairs have no rows.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}")
    questions = list(questions)

    def batches() -> Iterator[tuple[pa.RecordBatch, LabelRows]]:
        tables = None
        if aggregation == "dawid_skene":
            judged = label_judgments(project_id=project_id, include_excluded=include_excluded, generators=generators)
            tables = dawid_skene_tables(judgments=judged, questions=questions)
        # Gold pairs and the generators filter are applied by the join with the pairs: grouping
        # the judgments alone is much cheaper than joining every judgment to its pair first.
        counted = label_judgments(project_id=project_id, include_excluded=include_excluded, include_gold=True)
        pairs = select_columns(labelled_pairs(project_id=project_id, generators=generators).order_by(), pair_columns)
        sql, params = counted_pairs_sql(pairs=pairs, counts=vote_counts(judgments=counted, questions=questions))
        schema = counts_schema(pair_schema, len(questions))
        for batch in sql_batches(sql, params, schema, alias=pairs.db):
            ids = batch.column(0).to_numpy()
            yield batch, batch_label_rows(batch, n_questions=len(questions), pair_ids=ids, dawid_skene=tables)

    return batches()


def _categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(categories)) if categories else pd.Categorical([])


def labels_frame(
    *,
    project_id: int,
    questions: Sequence[str],
    aggregation: str = "majority",
    include_excluded: bool = False,
    generators: Sequence[str] = (),
) -> pd.DataFrame:
    """Labels per judged pair and question, sorted by pair then rubric order (gold pairs left out).

    Columns: ``pair_id``, ``question``, ``generator_a``, ``generator_b``, ``n``, ``votes_a``,
    ``votes_tie``, ``votes_b``, ``label`` (by ``aggregation``: the majority, or Dawid–Skene's
    most probable answer, None when undecided), ``agreement`` (share of agreeing rater pairs;
    NaN below 2 judgments), ``unanimous``, for Dawid–Skene ``ds_p_a``, ``ds_p_tie``, ``ds_p_b``,
    then ``majority`` (majority label; None on an exact split) and ``confidence`` (majority:
    the label's share of votes; Dawid–Skene: its posterior probability; NaN when undecided).
    The same numbers as ``analysis.pair_labels`` over :func:`judgments_frame`; memory holds the
    result and one batch of vote counts, never the judgments (but for Dawid–Skene).
    """
    questions = list(questions)
    use_ds = aggregation == "dawid_skene"
    names = dict(Generator.objects.filter(project_id=project_id).values_list("id", "name"))
    gen_ids = np.array(sorted(names), dtype=np.int64)
    schema = pa.schema([("pair_id", pa.int64()), ("generator_a", pa.int64()), ("generator_b", pa.int64())])
    columns = {"pair_id": "id", "generator_a": "generator_a_id", "generator_b": "generator_b_id"}
    parts: list[dict[str, np.ndarray]] = []
    for batch, rows in label_count_batches(
        project_id=project_id, questions=questions, pair_columns=columns, pair_schema=schema,
        aggregation=aggregation, include_excluded=include_excluded, generators=generators,
    ):
        part = {
            "pair_id": batch.column("pair_id").to_numpy()[rows.pair],
            "question": rows.question.astype(np.int16),
            "generator_a": _codes(batch.column("generator_a").to_numpy()[rows.pair], gen_ids).astype(np.int32),
            "generator_b": _codes(batch.column("generator_b").to_numpy()[rows.pair], gen_ids).astype(np.int32),
            "n": rows.n, "votes_a": rows.votes[:, 0], "votes_tie": rows.votes[:, 1], "votes_b": rows.votes[:, 2],
            "label": rows.label, "agreement": rows.agreement, "unanimous": rows.unanimous,
            "majority": rows.majority, "confidence": rows.confidence,
        }
        if use_ds:
            part.update(ds_p_a=rows.posteriors[:, 0], ds_p_tie=rows.posteriors[:, 1], ds_p_b=rows.posteriors[:, 2])
        parts.append(part)

    def cat(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([p[name] for p in parts]) if parts else np.empty(0, dtype=dtype)

    gen_names = [names[i] for i in gen_ids]
    # Categoricals: a few bytes per row instead of a Python string each.
    data: dict[str, Any] = {
        "pair_id": cat("pair_id", np.int64),
        "question": _categorical(cat("question", np.int16), questions),
        "generator_a": _categorical(cat("generator_a", np.int32), gen_names),
        "generator_b": _categorical(cat("generator_b", np.int32), gen_names),
        "n": cat("n", np.int64),
        "votes_a": cat("votes_a", np.int64),
        "votes_tie": cat("votes_tie", np.int64),
        "votes_b": cat("votes_b", np.int64),
        "label": _categorical(cat("label", np.int8), ANSWER_CATEGORIES),
        "agreement": cat("agreement", float),
        "unanimous": cat("unanimous", bool),
    }
    if use_ds:
        data.update({name: cat(name, float) for name in ("ds_p_a", "ds_p_tie", "ds_p_b")})
    data["majority"] = _categorical(cat("majority", np.int8), ANSWER_CATEGORIES)
    data["confidence"] = cat("confidence", float)
    return pd.DataFrame(data)


def labels_cached(
    *,
    project_id: int,
    questions: Sequence[str],
    aggregation: str = "majority",
    include_excluded: bool = False,
    generators: Sequence[str] = (),
) -> pd.DataFrame:
    """:func:`labels_frame`, cached until the project's judgments change."""
    stamp = judgments_stamp(project_id=project_id)
    params = f"{list(questions)}|{aggregation}|{include_excluded}|{sorted(generators)}"
    key = f"vj:labels:{project_id}:{stamp}:{hashlib.sha256(params.encode()).hexdigest()[:16]}"
    labels = cache.get(key)
    if labels is None:
        labels = labels_frame(project_id=project_id, questions=questions, aggregation=aggregation,
                              include_excluded=include_excluded, generators=generators)
        cache.set(key, labels, LABELS_CACHE_SECONDS)
    return labels


def label_rows(*, labels: pd.DataFrame) -> list[dict[str, Any]]:
    """A page of a labels frame as JSON-ready dicts, with each pair's prompt (one query)."""
    if labels.empty:
        return []
    pair_ids = sorted({int(p) for p in labels["pair_id"]})
    prompts = dict(Pair.objects.filter(id__in=pair_ids).values_list("id", "prompt__external_id"))
    has_ds = "ds_p_a" in labels.columns
    rows = []
    for rec in labels.to_dict("records"):
        agreement = rec["agreement"]
        confidence = rec["confidence"]
        row = {
            "pair": int(rec["pair_id"]),
            "prompt_id": prompts.get(int(rec["pair_id"])),
            "question": rec["question"],
            "generator_a": rec["generator_a"],
            "generator_b": rec["generator_b"],
            "n": int(rec["n"]),
            "votes": {"a": int(rec["votes_a"]), "tie": int(rec["votes_tie"]), "b": int(rec["votes_b"])},
            "label": rec["label"] if isinstance(rec["label"], str) else None,
            "majority": rec["majority"] if isinstance(rec["majority"], str) else None,
            "agreement": None if pd.isna(agreement) else float(agreement),
            "unanimous": bool(rec["unanimous"]),
            "confidence": None if pd.isna(confidence) else float(confidence),
        }
        if has_ds:
            row["probabilities"] = {"a": float(rec["ds_p_a"]), "tie": float(rec["ds_p_tie"]), "b": float(rec["ds_p_b"])}
        rows.append(row)
    return rows
