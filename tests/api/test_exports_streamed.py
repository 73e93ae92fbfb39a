"""Streamed labels: vote counts from the database give exactly ``analysis.pair_labels``'s labels
(random data with ties, exact splits, missing answers and excluded raters), batch by batch, in
the exports, the labels selector and the labels API alike."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection

from analysis import pair_labels
from annotation.exports import arrow_source
from annotation.exports import labels as export_labels
from annotation.exports.aggregation import agreement, majority
from annotation.exports.arrow_source import _copy_batches, _portable_sql_batches
from annotation.exports.spec import spec_from_options
from annotation.models import Judgment, Membership, Question
from annotation.selectors.labels import judgments_frame, label_count_batches, labels_frame, question_keys
from annotation.services.exports import export_stream
from tests.factories import GeneratorFactory, MembershipFactory, ProjectFactory, PromptFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db

ANSWERS = ("a", "tie", "b")


def random_project(seed: int, *, n_prompts: int = 25):
    """5 generators, 4 random pairs per prompt, 0–6 of 8 raters per pair (rater 8 excluded), each
    question skipped with probability 0.15; per-pair answer biases give unanimous pairs, majorities,
    ties and exact splits."""
    rng = random.Random(seed)
    project = ProjectFactory(name=f"random {seed}")
    keys = list(Question.objects.filter(project=project).values_list("key", flat=True))
    generators = [GeneratorFactory(project=project, name=f"g{i}") for i in range(5)]
    raters = [UserFactory() for _ in range(8)]
    for index, rater in enumerate(raters):
        MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER, excluded=index == 7)
    combos = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    judgments = []
    for p in range(n_prompts):
        prompt = PromptFactory(project=project, text=f'prompt "{p}"\nsecond line')
        for i, j in rng.sample(combos, 4):
            pair = make_pair(project=project, prompt=prompt, gen_a=generators[i], gen_b=generators[j])
            bias = rng.random()
            for rater in rng.sample(raters, rng.randint(0, 6)):
                answers = {}
                for key in keys:
                    if rng.random() < 0.15:
                        continue
                    x = rng.random()
                    answers[key] = "a" if x < bias * 0.8 else ("tie" if x < bias * 0.8 + 0.2 else "b")
                judgments.append(Judgment(project=project, pair=pair, rater=rater, answers=answers,
                                          left_is_a=rng.random() < 0.5))
    Judgment.objects.bulk_create(judgments)
    return project, keys


def reference(project_id: int, questions: list[str], *, aggregation: str = "majority", include_excluded: bool = False,
              generators: tuple[str, ...] = ()) -> pd.DataFrame:
    """``analysis.pair_labels`` over the analysis frame, in pair then rubric order, with
    ``majority`` and ``confidence`` as the labels selector defines them."""
    frame = judgments_frame(project_id=project_id, questions=questions, include_excluded=include_excluded,
                            generators=generators)
    use_ds = aggregation == "dawid_skene"
    ref = pair_labels(frame, questions=questions, dawid_skene_labels=use_ds)
    ref["majority"] = ref["label"]
    if use_ds:
        ref["label"] = ref["ds_label"]
        probs = ref[["ds_p_a", "ds_p_tie", "ds_p_b"]].to_numpy(dtype=float)
    else:
        probs = ref[["votes_a", "votes_tie", "votes_b"]].to_numpy(dtype=float) / ref["n"].to_numpy(dtype=float)[:, None]
    index = ref["label"].map({"a": 0, "tie": 1, "b": 2}).to_numpy(dtype=float, na_value=np.nan)
    ref["confidence"] = [probs[i, int(k)] if not np.isnan(k) else np.nan for i, k in enumerate(index)]
    ref["_q"] = ref["question"].map({k: i for i, k in enumerate(questions)}).astype(int)
    return ref.sort_values(["pair_id", "_q"], kind="stable").drop(columns=["_q"]).reset_index(drop=True)


def _plain(values) -> list:
    """Values as Python objects, every kind of missing as None."""
    objects = pd.Series(values).astype(object)
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in objects]


def assert_same_labels(got: pd.DataFrame, ref: pd.DataFrame, *, exact_floats: bool = True) -> None:
    assert len(got) == len(ref)
    for column in ("pair_id", "n", "votes_a", "votes_tie", "votes_b", "unanimous"):
        assert got[column].tolist() == ref[column].tolist(), column
    for column in ("question", "generator_a", "generator_b", "label", "majority"):
        assert _plain(got[column]) == _plain(ref[column]), column
    floats = ["agreement", "confidence"] + (["ds_p_a", "ds_p_tie", "ds_p_b"] if "ds_p_a" in ref else [])
    for column in floats:
        a, b = got[column].to_numpy(dtype=float), ref[column].to_numpy(dtype=float, na_value=np.nan)
        if exact_floats or column == "agreement":
            assert np.array_equal(a, b, equal_nan=True), column
        else:
            # Dawid–Skene sums in the order the judgments are read: equal up to rounding
            assert np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True), column


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_majority_equals_pair_labels_on_random_data(seed):
    project, keys = random_project(seed)
    ref = reference(project.pk, keys)
    labels = ref["label"]
    # the data exercise every case: ties, exact splits (undecided), single judgments, unanimity
    assert (labels == "tie").any() and labels.isna().any() and (ref["n"] == 1).any() and ref["unanimous"].any()
    assert (ref.groupby("pair_id").size() < len(keys)).any()  # missing answers
    assert_same_labels(labels_frame(project_id=project.pk, questions=keys), ref)
    for options in ({"include_excluded": True}, {"generators": ("g0", "g2", "g3")}):
        got = labels_frame(project_id=project.pk, questions=["final_verdict"], **options)
        assert_same_labels(got, reference(project.pk, ["final_verdict"], **options))


def test_streamed_dawid_skene_equals_pair_labels(seed=4):
    project, keys = random_project(seed)
    for questions in (keys, ["consistency"]):
        got = labels_frame(project_id=project.pk, questions=questions, aggregation="dawid_skene")
        assert_same_labels(got, reference(project.pk, questions, aggregation="dawid_skene"), exact_floats=False)


def test_many_small_batches_give_the_same_labels(monkeypatch):
    project, keys = random_project(5)
    whole = labels_frame(project_id=project.pk, questions=keys, aggregation="dawid_skene")
    sizes: list[int] = []
    columns = {"pair_id": "id"}
    schema = pa.schema([("pair_id", pa.int64())])
    monkeypatch.setattr(arrow_source, "CSV_BLOCK_BYTES", 512)  # PostgreSQL: ~15 pairs a batch
    monkeypatch.setattr(arrow_source, "PORTABLE_BATCH_ROWS", 7)
    for batch, _ in label_count_batches(project_id=project.pk, questions=keys, pair_columns=columns,
                                        pair_schema=schema):
        sizes.append(batch.num_rows)
    assert len(sizes) > 3
    small = labels_frame(project_id=project.pk, questions=keys, aggregation="dawid_skene")
    pd.testing.assert_frame_equal(small, whole)


def _export_rows(project, **options) -> list[dict]:
    spec = spec_from_options(options, question_keys=question_keys(project_id=project.pk))
    content = b"".join(export_stream(project=project, spec=spec).chunks)
    if spec.format == "parquet":
        return pq.read_table(io.BytesIO(content)).to_pylist()
    return [json.loads(line) for line in content.decode().splitlines()]


def test_exports_carry_the_same_labels(monkeypatch):
    project, keys = random_project(6)
    monkeypatch.setattr(arrow_source, "CSV_BLOCK_BYTES", 2048)  # several batches of pairs
    monkeypatch.setattr(export_labels, "OUT_BATCH_ROWS", 5)  # each handed on in slices
    ref = reference(project.pk, keys)
    for fmt in ("jsonl", "parquet"):
        rows = _export_rows(project, kind="labels", format=fmt, question="all")
        got = pd.DataFrame(rows)
        assert_same_labels(got, ref)
        assert [row["flag"] for row in rows] == ["undecided" if pd.isna(x) else ("tie" if x == "tie" else None)
                                                 for x in ref["label"]]
    final = ref[ref["question"] == "final_verdict"]
    decided = final[final["label"].isin(["a", "b"])]
    prefs = _export_rows(project, kind="preference", format="jsonl")
    assert [r["pair_id"] for r in prefs] == decided["pair_id"].tolist()
    for row, (_, expected) in zip(prefs, decided.iterrows(), strict=True):
        winner_is_b = expected["label"] == "b"
        assert row["generator_chosen"] == (row["generator_b"] if winner_is_b else row["generator_a"])
        assert row["chosen"] == (row["video_b"] if winner_is_b else row["video_a"])
        assert (row["votes_a"], row["votes_tie"], row["votes_b"]) == (
            expected["votes_a"], expected["votes_tie"], expected["votes_b"])
    kept = _export_rows(project, kind="preference", format="jsonl", ties="keep", undecided="keep", min_agreement="0.5")
    agree = final["agreement"].to_numpy(dtype=float, na_value=np.nan)
    assert [r["pair_id"] for r in kept] == final["pair_id"][agree >= 0.5].tolist()


def test_counting_helpers_match_the_definitions():
    votes = np.array([[3, 0, 0], [1, 1, 0], [0, 2, 1], [1, 1, 1], [0, 0, 0], [0, 0, 1], [2, 2, 3]])
    assert majority(votes).tolist() == [0, -1, 1, -1, -1, 2, 2]
    expected = [1.0, 0.0, 1 / 3, 0.0, np.nan, np.nan, (2 + 2 + 6) / 42]
    assert np.allclose(agreement(votes), expected, equal_nan=True)


def test_copy_and_portable_paths_read_the_same_counts():
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    from annotation.exports.aggregation import counted_pairs_sql, counts_schema, vote_counts
    from annotation.exports.arrow_source import select_columns
    from annotation.models import Pair

    project, keys = random_project(7, n_prompts=6)
    pairs = select_columns(Pair.objects.filter(project=project).order_by(),
                           {"pair_id": "id", "prompt": "prompt__text"})
    counts = vote_counts(judgments=Judgment.objects.filter(project=project), questions=keys)
    sql, params = counted_pairs_sql(pairs=pairs, counts=counts)
    schema = counts_schema(pa.schema([("pair_id", pa.int64()), ("prompt", pa.string())]), len(keys))
    with connection.cursor() as cursor:
        text = cursor.mogrify(sql, params).decode()
    copied = pa.Table.from_batches(list(_copy_batches(text, schema, "default")), schema=schema)
    portable = pa.Table.from_batches(list(_portable_sql_batches(sql, params, schema, "default", 5)), schema=schema)
    assert copied.equals(portable) and copied.num_rows > 0


def test_a_project_without_judgments_gives_empty_frames_and_files():
    project = ProjectFactory(name="empty")
    keys = question_keys(project_id=project.pk)
    frame = judgments_frame(project_id=project.pk, questions=keys, with_context=True)
    assert frame.empty and {"left_is_a", "gold", "prompt_id"} <= set(frame.columns)
    for aggregation in ("majority", "dawid_skene"):
        labels = labels_frame(project_id=project.pk, questions=keys, aggregation=aggregation)
        assert labels.empty and {"label", "majority", "confidence", "agreement"} <= set(labels.columns)
    assert _export_rows(project, kind="labels", format="jsonl", question="all") == []
    assert _export_rows(project, kind="preference", format="parquet") == []
