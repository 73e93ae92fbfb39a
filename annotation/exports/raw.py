"""Raw judgments: one row per judgment, canonical A/B answers, in judgment id order.

Judgments of gold pairs are kept here (and only here among the exports), marked ``is_gold``:
they are how raters were checked, not preference data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from django.db.models import BooleanField, Case, Value, When
from django.db.models.fields.json import KeyTextTransform

from annotation.exports.arrow_source import query_batches, select_columns
from annotation.exports.spec import ALL_QUESTIONS, ExportSpec
from annotation.exports.videos import video_columns, with_video_refs
from annotation.models import Judgment

TIMESTAMP = pa.timestamp("us", tz="UTC")


def raw_questions(spec: ExportSpec, question_keys: list[str]) -> list[str]:
    return list(question_keys) if spec.question == ALL_QUESTIONS else [spec.question]


def raw_schema(questions: list[str]) -> pa.Schema:
    """Columns of a raw export; one answer column per exported question, named by its key."""
    return pa.schema(
        [
            ("judgment_id", pa.int64()),
            ("pair_id", pa.int64()),
            ("prompt_id", pa.string()),
            ("prompt", pa.string()),
            ("generator_a", pa.string()),
            ("generator_b", pa.string()),
            ("video_a", pa.string()),
            ("video_b", pa.string()),
            ("is_gold", pa.bool_()),
            ("rater", pa.int64()),
            ("rater_excluded", pa.bool_()),
            *[(key, pa.string()) for key in questions],
            ("left_is_a", pa.bool_()),
            ("duration_ms", pa.int64()),
            ("watch_a_seconds", pa.float64()),
            ("watch_b_seconds", pa.float64()),
            ("source", pa.string()),
            ("created_at", TIMESTAMP),
            ("updated_at", TIMESTAMP),
        ]
    )


def raw_batches(
    *,
    project_id: int,
    spec: ExportSpec,
    question_keys: list[str],
    excluded_ids: list[int],
    video_prefix: str,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and the (lazy) batches of a raw export.

    With one question, only judgments that answer it; with ``all``, every judgment. Judgments
    of excluded raters are included (and flagged) only with ``include_excluded``.
    """
    questions = raw_questions(spec, question_keys)
    qs = Judgment.objects.filter(project_id=project_id).order_by("id")
    if spec.question != ALL_QUESTIONS:
        qs = qs.filter(answers__has_key=spec.question)
    if spec.generators:
        qs = qs.filter(pair__generator_a__name__in=spec.generators, pair__generator_b__name__in=spec.generators)
    if excluded_ids and not spec.include_excluded:
        qs = qs.exclude(rater_id__in=excluded_ids)
    flagged: Any = (
        Case(When(rater_id__in=excluded_ids, then=Value(True)), default=Value(False), output_field=BooleanField())
        if excluded_ids
        else Value(False, output_field=BooleanField())
    )
    videos = video_columns(spec.videos, prefix="pair__")
    columns: dict[str, Any] = {
        "judgment_id": "id",
        "pair_id": "pair_id",
        "prompt_id": "pair__prompt__external_id",
        "prompt": "pair__prompt__text",
        "generator_a": "pair__generator_a__name",
        "generator_b": "pair__generator_b__name",
        **videos,
        "is_gold": "pair__is_gold",
        "rater": "rater_id",
        "rater_excluded": flagged,
        **{key: KeyTextTransform(key, "answers") for key in questions},
        "left_is_a": "left_is_a",
        "duration_ms": "duration_ms",
        "watch_a_seconds": "watch_a_seconds",
        "watch_b_seconds": "watch_b_seconds",
        "source": "source",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    schema = raw_schema(questions)
    batches = query_batches(select_columns(qs, columns), schema)
    return schema, with_video_refs(batches, spec.videos, video_prefix)
