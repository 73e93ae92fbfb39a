"""Aggregated labels and TRL preference pairs.

Labels are computed once over the question's judgments (integer arrays, see
``annotation.selectors.labels``); the pairs' prompts and videos are then streamed in pair id
order and merged with the labels batch by batch, so memory holds the labels table and one batch
of pairs, never every prompt text.

Preference rows follow TRL's preference format — ``prompt``, ``chosen``, ``rejected`` (here
video paths or URLs) — plus ids, generators, question, votes and agreement. A tie or an
undecided pair kept with ``ties=keep`` / ``undecided=keep`` has ``flag`` set ("tie" or
"undecided") and lists A as ``chosen`` and B as ``rejected`` only by convention: filter it out
before training on preferences.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from annotation.exports.arrow_source import query_batches, select_columns
from annotation.exports.spec import ALL_QUESTIONS, ExportSpec
from annotation.exports.videos import video_columns, with_video_refs
from annotation.models import Pair
from annotation.selectors.labels import labels_frame

PAIR_SCHEMA = pa.schema([
    ("pair_id", pa.int64()),
    ("prompt_id", pa.string()),
    ("prompt", pa.string()),
    ("generator_a", pa.string()),
    ("generator_b", pa.string()),
    ("video_a", pa.string()),
    ("video_b", pa.string()),
])
_COUNTS = [("n", pa.int64()), ("votes_a", pa.int64()), ("votes_tie", pa.int64()), ("votes_b", pa.int64()),
           ("agreement", pa.float64())]


def labels_schema(spec: ExportSpec) -> pa.Schema:
    fields = [*PAIR_SCHEMA, pa.field("question", pa.string()), pa.field("aggregation", pa.string()),
              pa.field("label", pa.string()), pa.field("flag", pa.string()), *_COUNTS,
              pa.field("unanimous", pa.bool_()), pa.field("majority", pa.string()),
              pa.field("confidence", pa.float64())]
    if spec.aggregation == "dawid_skene":
        fields += [pa.field(f"ds_p_{name}", pa.float64()) for name in ("a", "tie", "b")]
    return pa.schema(fields)


def preference_schema(spec: ExportSpec) -> pa.Schema:  # noqa: ARG001 - same columns for every option
    return pa.schema([
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("pair_id", pa.int64()),
        ("prompt_id", pa.string()),
        ("question", pa.string()),
        ("generator_chosen", pa.string()),
        ("generator_rejected", pa.string()),
        ("generator_a", pa.string()),
        ("generator_b", pa.string()),
        ("video_a", pa.string()),
        ("video_b", pa.string()),
        ("label", pa.string()),
        ("flag", pa.string()),
        ("aggregation", pa.string()),
        *_COUNTS,
        ("confidence", pa.float64()),
    ])


def filtered_labels(labels: pd.DataFrame, spec: ExportSpec) -> pd.DataFrame:
    """Apply ``ties``, ``undecided`` and ``min_agreement``; add ``flag``."""
    label = labels["label"]
    undecided = label.isna().to_numpy()
    tie = (label == "tie").fillna(False).to_numpy(dtype=bool)
    keep = np.ones(len(labels), dtype=bool)
    if spec.ties == "drop":
        keep &= ~tie
    if spec.undecided == "drop":
        keep &= ~undecided
    if spec.min_agreement is not None:
        agreement = labels["agreement"].to_numpy(dtype=float)
        keep &= ~np.isnan(agreement) & (agreement >= spec.min_agreement - 1e-12)
    out = labels.loc[keep].copy()
    out["flag"] = np.where(undecided[keep], "undecided", np.where(tie[keep], "tie", None))
    return out.reset_index(drop=True)


def _pair_batches(project_id: int, spec: ExportSpec, video_prefix: str) -> Iterator[pa.RecordBatch]:
    qs = Pair.objects.filter(project_id=project_id).order_by("id")
    if spec.generators:
        qs = qs.filter(generator_a__name__in=spec.generators, generator_b__name__in=spec.generators)
    columns = {
        "pair_id": "id",
        "prompt_id": "prompt__external_id",
        "prompt": "prompt__text",
        "generator_a": "generator_a__name",
        "generator_b": "generator_b__name",
        **video_columns(spec.videos),
    }
    return with_video_refs(query_batches(select_columns(qs, columns), PAIR_SCHEMA), spec.videos, video_prefix)


def _merged(labels: pd.DataFrame, pairs: Iterator[pa.RecordBatch]) -> Iterator[tuple[pd.DataFrame, pa.Table]]:
    """(label rows, their pairs' rows) per pair batch; both are in pair id order."""
    label_pairs = labels["pair_id"].to_numpy(dtype=np.int64)
    if not label_pairs.size:
        return  # the pairs' query is never started
    for batch in pairs:
        ids = batch.column(0).to_numpy()
        if not ids.size:
            continue
        lo = int(np.searchsorted(label_pairs, ids[0], side="left"))
        hi = int(np.searchsorted(label_pairs, ids[-1], side="right"))
        if lo == hi:
            continue
        sub = labels.iloc[lo:hi]
        pos = np.searchsorted(ids, sub["pair_id"].to_numpy(dtype=np.int64))
        yield sub, pa.Table.from_batches([batch]).take(pa.array(pos))


def _strings(values: pd.Series) -> pa.Array:
    """A (categorical or object) column of strings and missing values as an Arrow string array."""
    return pa.array(values.astype(object).where(values.notna(), None).tolist(), type=pa.string())


def _counts(sub: pd.DataFrame) -> list[pa.Array]:
    return [pa.array(sub[name].to_numpy(dtype=np.int64)) for name in ("n", "votes_a", "votes_tie", "votes_b")] + [
        pa.array(sub["agreement"].to_numpy(dtype=float), from_pandas=True)
    ]


def _labels_batch(sub: pd.DataFrame, info: pa.Table, spec: ExportSpec, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [info.column(name).combine_chunks() for name in PAIR_SCHEMA.names]
    arrays += [
        _strings(sub["question"]),
        pa.array([spec.aggregation] * len(sub), type=pa.string()),
        _strings(sub["label"]),
        _strings(sub["flag"]),
        *_counts(sub),
        pa.array(sub["unanimous"].to_numpy(dtype=bool)),
        _strings(sub["majority"]),
        pa.array(sub["confidence"].to_numpy(dtype=float), from_pandas=True),
    ]
    if spec.aggregation == "dawid_skene":
        arrays += [pa.array(sub[c].to_numpy(dtype=float)) for c in ("ds_p_a", "ds_p_tie", "ds_p_b")]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _preference_batch(sub: pd.DataFrame, info: pa.Table, spec: ExportSpec, schema: pa.Schema) -> pa.RecordBatch:
    b_wins = (sub["label"] == "b").fillna(False).to_numpy(dtype=bool)
    mask = pa.array(b_wins)

    def pick(a: str, b: str, *, winner: bool) -> pa.Array:
        col_a, col_b = info.column(a).combine_chunks(), info.column(b).combine_chunks()
        return pc.if_else(mask, col_b, col_a) if winner else pc.if_else(mask, col_a, col_b)

    arrays = [
        info.column("prompt").combine_chunks(),
        pick("video_a", "video_b", winner=True),
        pick("video_a", "video_b", winner=False),
        info.column("pair_id").combine_chunks(),
        info.column("prompt_id").combine_chunks(),
        _strings(sub["question"]),
        pick("generator_a", "generator_b", winner=True),
        pick("generator_a", "generator_b", winner=False),
        info.column("generator_a").combine_chunks(),
        info.column("generator_b").combine_chunks(),
        info.column("video_a").combine_chunks(),
        info.column("video_b").combine_chunks(),
        _strings(sub["label"]),
        _strings(sub["flag"]),
        pa.array([spec.aggregation] * len(sub), type=pa.string()),
        *_counts(sub),
        pa.array(sub["confidence"].to_numpy(dtype=float), from_pandas=True),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def label_batches(
    *, project_id: int, spec: ExportSpec, question_keys: list[str], video_prefix: str
) -> tuple[pa.Schema, Iterator[pa.RecordBatch], int]:
    """Schema, lazy batches and the number of judgments read, for a labels or preference export."""
    questions = list(question_keys) if spec.question == ALL_QUESTIONS else [spec.question]
    labels = labels_frame(
        project_id=project_id,
        questions=questions,
        aggregation=spec.aggregation,
        include_excluded=spec.include_excluded,
        generators=spec.generators,
    )
    n_judgments = int(labels["n"].sum()) if not labels.empty else 0
    labels = filtered_labels(labels, spec)
    preference = spec.kind == "preference"
    schema = preference_schema(spec) if preference else labels_schema(spec)
    build = _preference_batch if preference else _labels_batch

    def batches() -> Iterator[pa.RecordBatch]:
        for sub, info in _merged(labels, _pair_batches(project_id, spec, video_prefix)):
            yield build(sub, info, spec, schema)

    return schema, batches(), n_judgments
