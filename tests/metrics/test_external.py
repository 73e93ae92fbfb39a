"""External scores: CSV and JSON Lines, validated row by row; first-class in analysis."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import ImportJob, ImportRowError
from metrics.models import MetricScore
from metrics.selectors import scores_frame
from metrics.services import metric_scores_import


@pytest.fixture
def videos(make_video):
    a = make_video(browser="videos/a.mp4", generator="Gen-2")
    b = make_video(browser="videos/b.mp4", generator="Pika", project=a.project)
    return a, b


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_csv_rows_are_validated_one_by_one_and_good_rows_are_stored(videos):
    a, b = videos
    pa, pb = a.prompt.external_id, b.prompt.external_id
    data = (
        "prompt_id,generator,metric,value,version\n"
        f"{pa},Gen-2,dover,0.61,\n"  # 1 ok
        f"{pb},Pika,dover,0.42,v2\n"  # 2 ok
        f"nope,Gen-2,dover,0.5,\n"  # 3 unknown prompt
        f"{pa},Runway,dover,0.5,\n"  # 4 unknown generator
        f"{pa},Gen-2,dover,abc,\n"  # 5 not a number
        f"{pa},Gen-2,,0.5,\n"  # 6 no metric
        f"{pa},Gen-2,dover,nan,\n"  # 7 not finite
        f"{pa},Pika,dover,0.5,\n"  # 8 no such video (prompt a has no Pika video)
        f"{pa},Gen-2,dover,0.7,\n"  # 9 duplicate of row 1
        f"{pa},Gen-2,flow_score,3.0,1+farneback\n"  # 10 clashes with the computed version
        f"{pa},Gen-2,flow_score,3.0,evalcrafter-raft\n"  # 11 ok
    )
    report = metric_scores_import(project=a.project, file_obj=_csv(data), file_name="scores.csv")
    assert report["status"] == "done"
    assert (report["total_rows"], report["created_rows"], report["error_rows"]) == (11, 3, 8)
    errors = {(e["row"], e["field"]) for e in report["errors"]}
    assert errors == {
        (3, "prompt_id"),
        (4, "generator"),
        (5, "value"),
        (6, "metric"),
        (7, "value"),
        (8, ""),
        (9, ""),
        (10, "version"),
    }
    assert "duplicate of row 1" in next(e["message"] for e in report["errors"] if e["row"] == 9)
    stored = {(s.video_id, s.metric, s.version): s for s in MetricScore.objects.filter(source="external")}
    assert stored[(a.id, "dover", "external")].value == 0.61
    assert stored[(b.id, "dover", "v2")].value == 0.42
    assert stored[(a.id, "dover", "external")].import_job_id == report["job_id"]
    job = ImportJob.objects.get(pk=report["job_id"])
    assert job.kind == "scores" and job.error_rows == 8 and job.status == "done"
    assert ImportRowError.objects.filter(job=job).count() == 8


def test_json_lines_and_reimport(videos):
    a, b = videos
    lines = [
        {"prompt_id": a.prompt.external_id, "generator": "Gen-2", "metric": "vqa_t", "value": 0.3},
        "this is not json",
        [1, 2],
        {"prompt_id": b.prompt.external_id, "generator": "Pika", "metric": "vqa_t", "value": True},
        {"prompt_id": b.prompt.external_id, "generator": "Pika", "metric": "vqa_t", "value": "0.8"},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    report = metric_scores_import(project=a.project, file_obj=io.StringIO(text), file_name="s.jsonl")
    assert report["created_rows"] == 2 and report["error_rows"] == 3
    assert [e["row"] for e in report["errors"]] == [2, 3, 4]

    again = text.replace('"value": 0.3', '"value": 0.35')
    report = metric_scores_import(project=a.project, file_obj=io.StringIO(again), file_name="s.jsonl")
    assert (report["created_rows"], report["updated_rows"], report["unchanged_rows"]) == (0, 1, 1)
    assert MetricScore.objects.get(video=a, metric="vqa_t").value == 0.35


def test_a_file_without_the_required_columns_is_refused(videos):
    a, _ = videos
    report = metric_scores_import(project=a.project, file_obj=_csv("prompt,gen,value\nx,y,1\n"), file_name="s.csv")
    assert report["status"] == "failed" and "prompt_id" in report["error"]
    report = metric_scores_import(project=a.project, file_obj=_csv("x"), file_name="s.xlsx")
    assert report["status"] == "failed"
    assert not MetricScore.objects.exists()


def test_external_scores_are_first_class_in_analysis(videos):
    a, b = videos
    data = (
        "prompt_id,generator,metric,value\n"
        f"{a.prompt.external_id},Gen-2,dover,0.9\n{b.prompt.external_id},Pika,dover,0.1\n"
    )
    metric_scores_import(project=a.project, file_obj=_csv(data), file_name="s.csv")
    frame = scores_frame(project_id=a.project_id)
    assert sorted(frame[frame.metric == "dover"].generator) == ["Gen-2", "Pika"]


def test_import_scores_command(videos, tmp_path, capsys):
    a, b = videos
    path = tmp_path / "scores.csv"
    path.write_text(f"prompt_id,generator,metric,value\n{a.prompt.external_id},Gen-2,dover,0.9\nzzz,Pika,dover,0.1\n")
    with pytest.raises(CommandError, match="1 rows had errors"):
        call_command("import_scores", a.project.name, str(path))
    captured = capsys.readouterr()
    assert "1 created" in captured.out and "row 2 [prompt_id]" in captured.err
    assert MetricScore.objects.filter(video=a, metric="dover").exists()
    path.write_text(f"prompt_id,generator,metric,value\n{b.prompt.external_id},Pika,dover,0.2\n")
    call_command("import_scores", str(a.project_id), str(path))
    assert MetricScore.objects.filter(video=b, metric="dover").exists()
    with pytest.raises(CommandError, match="no project"):
        call_command("import_scores", "no such project", str(path))


def test_a_json_array_file(videos):
    a, _ = videos
    items = [{"prompt_id": a.prompt.external_id, "generator": "Gen-2", "metric": "m", "value": 1}, "x"]
    report = metric_scores_import(project=a.project, file_obj=io.StringIO(json.dumps(items)), file_name="s.json")
    assert report["created_rows"] == 1 and report["errors"] == [
        {"row": 2, "field": "", "message": "each item must be a JSON object"}
    ]


def test_rows_are_read_like_the_other_importers(videos, settings):
    """The shared reader: blank JSON Lines are not counted, extra CSV cells and bad lines are row
    errors with their number, a file that is not UTF-8, empty or too large is refused whole."""
    a, b = videos
    good = {"prompt_id": a.prompt.external_id, "generator": "Gen-2", "metric": "m", "value": 0.5}
    text = "\n".join([json.dumps(good), "", "{not json", "", json.dumps({**good, "generator": "Pika"})])
    report = metric_scores_import(project=a.project, file_obj=io.BytesIO(text.encode()), file_name="s.jsonl")
    assert report["total_rows"] == 3 and report["created_rows"] == 1
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, ""), (3, "")]
    assert report["errors"][0]["message"].startswith("not valid JSON")
    assert "no video of prompt" in report["errors"][1]["message"]

    csv_text = f"prompt_id,generator,metric,value\n{b.prompt.external_id},Pika,m,1,extra\n"
    report = metric_scores_import(project=a.project, file_obj=_csv(csv_text), file_name="s.csv")
    assert report["errors"] == [{"row": 1, "field": "", "message": "5 cells for 4 columns"}]

    for content, name, reason in [(b"\xff\xfe\x00bad", "s.csv", "UTF-8"), (b"", "s.jsonl", "empty"),
                                  (b"[{", "s.json", "not valid JSON")]:
        report = metric_scores_import(project=a.project, file_obj=io.BytesIO(content), file_name=name)
        assert report["status"] == "failed" and reason in report["error"], report
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    report = metric_scores_import(project=a.project, file_obj=_csv(csv_text), file_name="s.csv")
    assert report["status"] == "failed" and "IMPORT_MAX_UPLOAD_BYTES" in report["error"]
    assert MetricScore.objects.filter(metric="m").count() == 1
