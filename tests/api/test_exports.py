"""Exports: TRL preference files load with Hugging Face datasets, options change the output as
documented, large projects get a job, the command writes the same file, both read paths agree."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.test import RequestFactory

from annotation.exports.arrow_source import _copy_batches, _portable_batches, select_columns
from annotation.models import ExportJob, Judgment
from tests.api._manager_data import EXPECTED, judged_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    return judged_project(name="Fox study")


@pytest.fixture(autouse=True)
def _offline_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _export(data, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = data.client().get(f"/api/v1/projects/{data.project.pk}/exports/?{query}")
    assert response.status_code == 200, response.content
    assert response.streaming
    return response, b"".join(response.streaming_content)


def _jsonl(data, **params) -> list[dict]:
    _, content = _export(data, format="jsonl", **params)
    return [json.loads(line) for line in content.decode().splitlines()]


def _pair_index(data) -> dict[int, int]:
    return {pair.pk: i for i, pair in enumerate(data.pairs)}


def test_preference_jsonl_loads_with_datasets_in_trl_format(data, tmp_path):
    import datasets

    response, content = _export(data, kind="preference", format="jsonl")
    disposition = response["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="fox-study-p\d+-preference-final_verdict-\d{8}\.jsonl"', disposition)
    assert response["Content-Type"] == "application/jsonl"
    path = tmp_path / "prefs.jsonl"
    path.write_bytes(content)
    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert {"pair_id", "prompt_id", "question", "generator_chosen", "generator_rejected", "votes_a", "votes_b",
            "votes_tie", "agreement", "n"} <= set(dataset.column_names)
    index = _pair_index(data)
    pairs = {pair.pk: pair for pair in data.pairs}
    decided = {i for i, label in EXPECTED.items() if label in ("a", "b")}
    assert {index[row["pair_id"]] for row in dataset} == decided  # ties and undecided dropped by default
    for row in dataset:
        pair = pairs[row["pair_id"]]
        expected = EXPECTED[index[row["pair_id"]]]
        winner, loser = (pair.video_a, pair.video_b) if expected == "a" else (pair.video_b, pair.video_a)
        assert row["chosen"] != row["rejected"]
        assert (row["chosen"], row["rejected"]) == (winner.source, loser.source)
        assert row["generator_chosen"] == winner.generator.name and row["label"] == expected
        assert row["prompt"] == pair.prompt.text and row["flag"] is None
        assert (row["votes_a"] > row["votes_b"]) == (expected == "a")


def test_preference_parquet_loads_with_datasets(data, tmp_path):
    import datasets

    response, content = _export(data, kind="preference", format="parquet")
    assert response["Content-Disposition"].endswith('.parquet"')
    path = tmp_path / "prefs.parquet"
    path.write_bytes(content)
    dataset = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"] and dataset.num_rows == 4
    assert all(row["chosen"] != row["rejected"] for row in dataset)


def test_csv_has_a_header_and_quotes_text(data):
    _, content = _export(data, kind="preference", format="csv")
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert len(rows) == 4 and rows[0]["prompt"].startswith('a "fox" number') and "\n" in rows[0]["prompt"]
    _, empty = _export(data, kind="preference", format="csv", generators="beta,gamma", min_agreement="1")
    assert empty.decode().startswith('"prompt","chosen","rejected"') or empty == b""


def test_ties_and_undecided_kept_flagged(data):
    index = _pair_index(data)
    rows = {index[r["pair_id"]]: r for r in _jsonl(data, ties="keep", undecided="keep")}
    assert set(rows) == set(EXPECTED)
    assert rows[3]["flag"] == "tie" and rows[3]["label"] == "tie"
    assert rows[2]["flag"] == "undecided" and rows[2]["label"] is None
    assert rows[0]["flag"] is None
    only_ties = {index[r["pair_id"]] for r in _jsonl(data, ties="keep")}
    assert only_ties == {0, 1, 3, 4, 5}


def test_min_agreement_generators_and_excluded_raters(data):
    index = _pair_index(data)
    assert {index[r["pair_id"]] for r in _jsonl(data, min_agreement="1")} == {0, 5}
    gens = _jsonl(data, generators="alpha,beta")
    assert gens and all({r["generator_a"], r["generator_b"]} == {"alpha", "beta"} for r in gens)
    with_excluded = {index[r["pair_id"]]: r for r in _jsonl(data, include_excluded="true")}
    # the excluded rater always disagrees: pair 2 (a, b, tie) becomes b; pair 1 (b, b, a) splits
    assert with_excluded[2]["label"] == "b" and with_excluded[2]["n"] == 4 and 1 not in with_excluded


def test_dawid_skene_and_video_urls(data):
    rows = _jsonl(data, aggregation="dawid_skene", videos="url")
    assert rows and {r["aggregation"] for r in rows} == {"dawid_skene"}
    assert all(re.fullmatch(r"http://testserver/media/v/[0-9a-f-]{36}\.mp4", r["chosen"]) for r in rows)
    assert all(0 <= r["confidence"] <= 1 for r in rows)


def test_labels_keep_ties_and_undecided_and_cover_all_questions(data):
    index = _pair_index(data)
    rows = _jsonl(data, kind="labels", question="all")
    assert {r["question"] for r in rows} == {"visual_appeal", "final_verdict"} and len(rows) == 12
    final = {index[r["pair_id"]]: r for r in rows if r["question"] == "final_verdict"}
    assert {i: r["label"] for i, r in final.items()} == EXPECTED
    assert final[2]["flag"] == "undecided" and final[0]["unanimous"] is True
    dropped = _jsonl(data, kind="labels", ties="drop", undecided="drop")
    assert {index[r["pair_id"]] for r in dropped} == {0, 1, 4, 5}


def test_raw_judgments_with_all_questions(data):
    rows = _jsonl(data, kind="raw", question="all")
    assert len(rows) == Judgment.objects.filter(project=data.project).count() == 24
    assert [r["judgment_id"] for r in rows] == sorted(r["judgment_id"] for r in rows)
    first = rows[0]
    assert {"final_verdict", "visual_appeal", "rater_excluded", "created_at", "video_a"} <= set(first)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["created_at"])
    assert sum(r["rater_excluded"] for r in rows) == 6  # kept and flagged by default in raw exports
    without = _jsonl(data, kind="raw", include_excluded="false")
    assert len(without) == 18 and not any(r["rater_excluded"] for r in without)
    assert set(without[0]) >= {"final_verdict"} and "visual_appeal" not in without[0]


def test_raw_parquet_types(data):
    _, content = _export(data, kind="raw", format="parquet")
    table = pq.read_table(io.BytesIO(content))
    assert table.num_rows == 24
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("left_is_a").type == pa.bool_()


@pytest.mark.parametrize("kind", ["raw", "labels", "preference"])
def test_a_handful_of_queries_whatever_the_size(data, kind, django_assert_max_num_queries):
    # Django sees the small queries; the rows come through one COPY per table (not counted)
    with django_assert_max_num_queries(16):
        _export(data, kind=kind, format="parquet", question="all" if kind != "preference" else "final_verdict")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"kind": "nope"}, "kind"), ({"format": "xml"}, "format"), ({"question": "nope"}, "question"),
     ({"question": "all"}, "question"), ({"min_agreement": "2"}, "min_agreement"),
     ({"generators": "alpha"}, "generators")],
)
def test_invalid_options_answer_400(data, params, field):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = data.client().get(f"/api/v1/projects/{data.project.pk}/exports/?{query}")
    assert response.status_code == 400 and field in response.json(), response.content


def test_large_projects_get_a_job_to_poll(data, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.EXPORT_SYNC_MAX_JUDGMENTS = 10
    settings.EXPORT_ROOT = str(tmp_path / "exports")
    client = data.client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/api/v1/projects/{data.project.pk}/exports/?kind=preference&format=parquet")
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == job["url"]
    polled = client.get(job["url"]).json()
    assert polled["status"] == "done" and polled["progress"] == 1.0 and polled["rows_written"] == 4
    download = client.get(polled["download_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="fox-study-')
    table = pq.read_table(io.BytesIO(b"".join(download.streaming_content)))
    assert table.column_names[:3] == ["prompt", "chosen", "rejected"] and table.num_rows == 4
    listing = client.get(f"/api/v1/projects/{data.project.pk}/exports/jobs/").json()
    assert [j["id"] for j in listing] == [job["id"]]
    assert ExportJob.objects.get(pk=job["id"]).created_by == data.manager


def test_a_failed_job_reports_why(data, settings, tmp_path, django_capture_on_commit_callbacks):
    from annotation.exports.spec import ExportSpec
    from annotation.services.exports import export_job_create

    settings.EXPORT_ROOT = str(tmp_path / "exports")
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(project=data.project, spec=ExportSpec(question="gone"))
    job.refresh_from_db()
    assert job.status == ExportJob.STATUS_FAILED and "question" in job.error
    response = data.client().get(f"/api/v1/projects/{data.project.pk}/exports/jobs/{job.pk}/download/")
    assert response.status_code == 404


def test_the_command_writes_the_same_file(data, tmp_path):
    _, api = _export(data, kind="preference", format="jsonl", videos="source")
    out = tmp_path / "prefs.jsonl"
    call_command("export_preferences", str(data.project.pk), "--kind", "preference", "--format", "jsonl",
                 "--question", "final_verdict", "-o", str(out))
    assert out.read_bytes() == api
    named = tmp_path / "labels.csv"
    call_command("export_preferences", "Fox study", "--kind", "labels", "--format", "csv", "--ties", "drop",
                 "--undecided", "drop", "-o", str(named))
    assert len(list(csv.DictReader(named.open()))) == 4


def test_copy_and_portable_paths_read_the_same_rows(data):
    from django.db import connection

    from annotation.exports.raw import raw_schema

    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    qs = select_columns(
        Judgment.objects.filter(project=data.project).order_by("id"),
        {"judgment_id": "id", "prompt": "pair__prompt__text", "left_is_a": "left_is_a",
         "watch_a_seconds": "watch_a_seconds", "created_at": "created_at"},
    )
    schema = pa.schema([f for f in raw_schema([]) if f.name in ("judgment_id", "prompt", "left_is_a",
                                                                 "watch_a_seconds", "created_at")])
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        text = cursor.mogrify(sql, params).decode()
    copied = pa.Table.from_batches(list(_copy_batches(text, schema, "default")), schema=schema)
    portable = pa.Table.from_batches(list(_portable_batches(qs, schema, 7)), schema=schema)
    assert copied.equals(portable)


def test_exports_page_for_managers(data, tmp_path):
    from django.http import Http404

    from frontend.views_exports import project_exports

    request = RequestFactory().get(f"/projects/{data.project.pk}/exports/")
    request.user = data.manager
    response = project_exports(request, pk=data.project.pk)
    assert response.status_code == 200 and b"export-form" in response.content
    assert f"/api/v1/projects/{data.project.pk}/exports/".encode() in response.content
    request.user = data.raters[0]
    with pytest.raises(Http404):
        project_exports(request, pk=data.project.pk)
    assert Path(tmp_path).exists()
