"""Gold pairs measure raters: left out of the analysis input, labels, the labels API and the labels
and preference exports; kept, marked ``is_gold``, in raw exports and the judgments feed. Marking a
pair gold or not changes the judgments stamp, so cached labels are recomputed."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotation.exports.spec import spec_from_options
from annotation.models import Judgment, Pair
from annotation.selectors.labels import judgments_frame, judgments_stamp, labels_frame, question_keys
from annotation.services.exports import export_stream
from tests.api._manager_data import EXPECTED, judged_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    return judged_project(name="Gold study")


def _mark(pair: Pair, answers: dict | None) -> None:
    Pair.objects.filter(pk=pair.pk).update(is_gold=bool(answers), gold_answers=answers or {})


def _export(data, **options) -> tuple[list[dict], tuple[int, int]]:
    spec = spec_from_options(options, question_keys=question_keys(project_id=data.project.pk))
    progress: list[tuple[int, int]] = [(0, 0)]
    stream = export_stream(project=data.project, spec=spec, on_progress=lambda r, w: progress.append((r, w)))
    content = b"".join(stream.chunks)
    if spec.format == "parquet":
        return pq.read_table(io.BytesIO(content)).to_pylist(), progress[-1]
    return [json.loads(line) for line in content.decode().splitlines()], progress[-1]


def test_gold_pairs_are_left_out_of_analysis_labels_and_preference(data):
    gold = data.pairs[0]  # unanimous "a" without the excluded rater
    _mark(gold, {"final_verdict": ["a"]})
    others = {p.pk for p in data.pairs[1:6]}

    frame = judgments_frame(project_id=data.project.pk, questions=["final_verdict"], with_context=True)
    assert gold.pk not in set(frame["pair_id"]) and set(frame["pair_id"]) == others
    assert frame["gold"].isna().all()
    with_gold = judgments_frame(project_id=data.project.pk, questions=["final_verdict"], with_context=True,
                                include_gold=True)
    assert set(with_gold.loc[with_gold["pair_id"] == gold.pk, "gold"]) == {"a"}

    assert set(labels_frame(project_id=data.project.pk, questions=["final_verdict"])["pair_id"]) == others
    api = data.client().get(f"/api/v1/projects/{data.project.pk}/labels/?question=final_verdict").json()
    assert api["count"] == 5 and {row["pair"] for row in api["results"]} == others

    labels, (read, written) = _export(data, kind="labels", format="jsonl", question="all")
    assert {row["pair_id"] for row in labels} == others and written == len(labels) == 10
    assert read == 15  # the judgments counted: 5 pairs x 3 raters, the excluded rater and the gold pair left out
    prefs, _ = _export(data, kind="preference", format="parquet")
    decided = {data.pairs[i].pk for i, label in EXPECTED.items() if label in ("a", "b") and i != 0}
    assert {row["pair_id"] for row in prefs} == decided


def test_raw_exports_and_the_feed_keep_gold_judgments_marked(data):
    gold = data.pairs[2]
    _mark(gold, {"final_verdict": ["a", "tie"]})
    rows, (read, written) = _export(data, kind="raw", format="jsonl", question="all")
    assert len(rows) == read == written == 24
    assert {row["judgment_id"] for row in rows if row["is_gold"]} == set(
        Judgment.objects.filter(pair=gold).values_list("id", flat=True))
    assert sum(row["is_gold"] for row in rows) == 4
    table = pq.read_table(io.BytesIO(b"".join(export_stream(
        project=data.project,
        spec=spec_from_options({"kind": "raw", "format": "parquet"}, question_keys=question_keys(
            project_id=data.project.pk)),
    ).chunks)))
    assert table.schema.field("is_gold").type == pa.bool_() and sum(table.column("is_gold").to_pylist()) == 4

    body = data.client().get(f"/api/v1/projects/{data.project.pk}/judgments/?page_size=100").json()
    marked = {row["id"] for row in body["results"] if row["is_gold"]}
    assert marked == set(Judgment.objects.filter(pair=gold).values_list("id", flat=True))
    assert all(row["is_gold"] is False for row in body["results"] if row["pair"] != gold.pk)


def test_marking_and_unmarking_gold_changes_the_stamp_and_the_cached_labels(data):
    url = f"/api/v1/projects/{data.project.pk}/labels/?question=final_verdict"
    client = data.client()
    before = judgments_stamp(project_id=data.project.pk)
    assert client.get(url).json()["count"] == 6
    _mark(data.pairs[4], {"final_verdict": ["a"]})
    marked = judgments_stamp(project_id=data.project.pk)
    assert marked != before
    assert client.get(url).json()["count"] == 5  # the cached labels were not served
    Pair.objects.filter(pk=data.pairs[4].pk).update(gold_answers={"final_verdict": ["b"]})
    assert judgments_stamp(project_id=data.project.pk) not in (before, marked)
    _mark(data.pairs[4], None)
    assert judgments_stamp(project_id=data.project.pk) == before
    assert client.get(url).json()["count"] == 6
    _mark(data.pairs[5], {"final_verdict": ["a"]})  # another pair: same count of gold pairs, another stamp
    assert judgments_stamp(project_id=data.project.pk) not in (before, marked)
