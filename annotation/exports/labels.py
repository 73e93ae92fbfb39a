"""Aggregated labels and TRL preference pairs, streamed with bounded memory.

The database counts each pair's votes and joins them to the pair's prompt, generators and videos
(:func:`annotation.selectors.labels.label_count_batches`); every batch becomes label rows
(pair, then rubric order), is filtered (``ties``, ``undecided``, ``min_agreement``) and shaped
into an Arrow batch. Memory holds one batch, whatever the number of judgments; Dawid–Skene also
holds the question's judgments as compact arrays while it is fitted. Gold pairs have no labels.

Preference rows follow TRL's preference format — ``prompt``, ``chosen``, ``rejected`` (here
video paths or URLs) — plus ids, generators, question, votes and agreement. A tie or an
undecided pair kept with ``ties=keep`` / ``undecided=keep`` has ``flag`` set ("tie" or
"undecided") and lists A as ``chosen`` and B as ``rejected`` only by convention: filter it out
before training on preferences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from annotation.exports.aggregation import JUDGMENTS_COLUMN, LabelRows
from annotation.exports.spec import ALL_QUESTIONS, ExportSpec
from annotation.exports.videos import video_columns, with_video_refs
from annotation.selectors.labels import label_count_batches

PAIR_SCHEMA = pa.schema([
    ("pair_id", pa.int64()),
    ("prompt_id", pa.string()),
    ("prompt", pa.string()),
    ("generator_a", pa.string()),
    ("generator_b", pa.string()),
    ("video_a", pa.string()),
    ("video_b", pa.string()),
])
#: Rows per batch handed to the writers.
OUT_BATCH_ROWS = 4096
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


_ANSWER_TEXTS = pa.array(["a", "tie", "b"], type=pa.string())


def _texts(codes: np.ndarray) -> pa.Array:
    """Answer categories as "a" / "tie" / "b", null where −1."""
    return _ANSWER_TEXTS.take(pa.array(codes.astype(np.int64), mask=codes < 0))


def _floats(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def _kept(rows: LabelRows, spec: ExportSpec) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept by ``ties``, ``undecided`` and ``min_agreement``, and their ``flag`` codes
    (0: none, 1: tie, 2: undecided)."""
    undecided = rows.label < 0
    tie = rows.label == 1
    keep = np.ones(rows.label.size, dtype=bool)
    if spec.ties == "drop":
        keep &= ~tie
    if spec.undecided == "drop":
        keep &= ~undecided
    if spec.min_agreement is not None:
        keep &= ~np.isnan(rows.agreement) & (rows.agreement >= spec.min_agreement - 1e-12)
    flag = np.where(undecided, 2, np.where(tie, 1, 0))
    return np.flatnonzero(keep), flag


_FLAGS = pa.array([None, "tie", "undecided"], type=pa.string())


def _counts(rows: LabelRows, keep: np.ndarray) -> list[pa.Array]:
    votes = rows.votes[keep]
    return [pa.array(rows.n[keep]), pa.array(votes[:, 0]), pa.array(votes[:, 1]), pa.array(votes[:, 2]),
            _floats(rows.agreement[keep])]


def _labels_batch(info: pa.RecordBatch, rows: LabelRows, keep: np.ndarray, flag: np.ndarray, spec: ExportSpec,
                  questions: pa.Array, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [info.column(name) for name in PAIR_SCHEMA.names]
    arrays += [
        questions.take(pa.array(rows.question[keep])),
        pa.array([spec.aggregation] * keep.size, type=pa.string()),
        _texts(rows.label[keep]),
        _FLAGS.take(pa.array(flag[keep])),
        *_counts(rows, keep),
        pa.array(rows.unanimous[keep]),
        _texts(rows.majority[keep]),
        _floats(rows.confidence[keep]),
    ]
    if spec.aggregation == "dawid_skene":
        arrays += [pa.array(rows.posteriors[keep, i]) for i in range(3)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _preference_batch(info: pa.RecordBatch, rows: LabelRows, keep: np.ndarray, flag: np.ndarray, spec: ExportSpec,
                      questions: pa.Array, schema: pa.Schema) -> pa.RecordBatch:
    mask = pa.array(rows.label[keep] == 2)  # B won: B is chosen

    def pick(a: str, b: str, *, winner: bool) -> pa.Array:
        col_a, col_b = info.column(a), info.column(b)
        return pc.if_else(mask, col_b, col_a) if winner else pc.if_else(mask, col_a, col_b)

    arrays = [
        info.column("prompt"),
        pick("video_a", "video_b", winner=True),
        pick("video_a", "video_b", winner=False),
        info.column("pair_id"),
        info.column("prompt_id"),
        questions.take(pa.array(rows.question[keep])),
        pick("generator_a", "generator_b", winner=True),
        pick("generator_a", "generator_b", winner=False),
        info.column("generator_a"),
        info.column("generator_b"),
        info.column("video_a"),
        info.column("video_b"),
        _texts(rows.label[keep]),
        _FLAGS.take(pa.array(flag[keep])),
        pa.array([spec.aggregation] * keep.size, type=pa.string()),
        *_counts(rows, keep),
        _floats(rows.confidence[keep]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def label_batches(
    *,
    project_id: int,
    spec: ExportSpec,
    question_keys: list[str],
    video_prefix: str,
    on_read: Callable[[int], None] | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Schema and lazy batches of a labels or preference export, in pair id then rubric order.

    ``on_read(n)`` is told, batch by batch, how many judgments were counted. A batch may have no
    row (every pair of it filtered out), so progress keeps moving.
    """
    questions = list(question_keys) if spec.question == ALL_QUESTIONS else [spec.question]
    question_names = pa.array(questions, type=pa.string())
    preference = spec.kind == "preference"
    schema = preference_schema(spec) if preference else labels_schema(spec)
    build = _preference_batch if preference else _labels_batch
    columns = {
        "pair_id": "id",
        "prompt_id": "prompt__external_id",
        "prompt": "prompt__text",
        "generator_a": "generator_a__name",
        "generator_b": "generator_b__name",
        **video_columns(spec.videos),
    }
    counted = label_count_batches(
        project_id=project_id,
        questions=questions,
        pair_columns=columns,
        pair_schema=PAIR_SCHEMA,
        aggregation=spec.aggregation,
        include_excluded=spec.include_excluded,
        generators=spec.generators,
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for batch, rows in counted:
            if on_read is not None:
                on_read(int(pc.sum(batch.column(JUDGMENTS_COLUMN)).as_py() or 0))
            keep, flag = _kept(rows, spec)
            pairs = pa.RecordBatch.from_arrays([batch.column(name) for name in PAIR_SCHEMA.names], schema=PAIR_SCHEMA)
            (info,) = with_video_refs([pairs.take(pa.array(rows.pair[keep]))], spec.videos, video_prefix)
            out = build(info, rows, keep, flag, spec, question_names, schema)
            # A batch of pairs gives up to one row per question each: hand them on in slices, so
            # that a writer's working set (JSON text, one row group) does not grow with the rubric.
            yield from (out.slice(start, OUT_BATCH_ROWS) for start in range(0, max(out.num_rows, 1), OUT_BATCH_ROWS))

    return schema, batches()
