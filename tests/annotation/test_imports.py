"""Manifest import: every bad-row kind reported with its row number, good rows stored, idempotent."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Generator, ImportJob, Prompt, Video
from annotation.selectors.imports import import_report
from annotation.services.imports import manifest_import
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> Path:
    return Path(settings.IMPORT_ROOTS[0])


@pytest.fixture
def project():
    return ProjectFactory()


def _file(root: Path, name: str, content: bytes = b"not really a video") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _csv(rows: list[list[str]], header: str = "prompt_id,prompt,generator,video,tags") -> io.BytesIO:
    import csv

    out = io.StringIO()
    out.write(header + "\n")
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(row)
    return io.BytesIO(out.getvalue().encode())


def _jsonl(rows: list[dict]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in rows).encode())


def _errors(job: ImportJob) -> dict[int, str]:
    return {e.row: f"{e.field}: {e.message}" for e in job.row_errors.all()}


def test_good_csv_manifest_is_stored(project, root):
    a, b, c = (_file(root, f"v{i}.mp4") for i in range(3))
    job = manifest_import(
        project=project,
        file_obj=_csv(
            [
                ["p1", "a cat", "GenA", str(a), "motion=fast;category=animals"],
                ["p1", "a cat", "GenB", str(b), ""],
                ["p2", "a dog", "GenA", "v2.mp4", ""],
            ]
        ),  # relative to the import root
        file_name="m.csv",
    )
    assert job.status == ImportJob.STATUS_DONE
    assert (job.total_rows, job.created_rows, job.unchanged_rows, job.error_rows) == (3, 3, 0, 0)
    assert Video.objects.filter(project=project, status=Video.STATUS_PENDING).count() == 3
    assert set(Generator.objects.filter(project=project).values_list("name", flat=True)) == {"GenA", "GenB"}
    p1 = Prompt.objects.get(project=project, external_id="p1")
    assert p1.tags == {"motion": "fast", "category": "animals"}
    assert Video.objects.get(prompt__external_id="p2").source == str(c)


def test_jsonl_with_tag_object_and_list(project, root):
    a, b = _file(root, "a.mp4"), _file(root, "b.mp4")
    job = manifest_import(
        project=project,
        file_obj=_jsonl(
            [
                {"prompt_id": "x", "prompt": "rain", "generator": "G1", "video": str(a), "tags": {"motion": "slow"}},
                {
                    "prompt_id": 7,
                    "prompt": "snow",
                    "generator": "G1",
                    "video": str(b),
                    "tags": ["outdoor", "motion:fast"],
                },
            ]
        ),
        file_name="m.jsonl",
    )
    assert job.created_rows == 2 and job.error_rows == 0
    assert Prompt.objects.get(external_id="x").tags == {"motion": "slow"}
    assert Prompt.objects.get(external_id="7").tags == {"outdoor": True, "motion": "fast"}


def test_every_bad_row_kind_is_reported_and_good_rows_stored(project, root, tmp_path):
    good = _file(root, "good.mp4")
    other = _file(root, "other.mp4")
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    link = root / "link.mp4"
    os.symlink(outside, link)
    _file(root, "sub/inner.mp4")
    directory = root / "adir"
    directory.mkdir()
    rows = [
        {"prompt_id": "p1", "prompt": "a cat", "generator": "A", "video": str(good)},  # 1 good
        {"prompt_id": "p2", "prompt": "", "generator": "A", "video": str(other)},  # 2 missing value
        {"prompt_id": "p3", "prompt": "x", "generator": "A", "video": str(root / "nope.mp4")},  # 3 unknown file
        {"prompt_id": "p4", "prompt": "x", "generator": "A", "video": str(outside)},  # 4 outside roots
        {"prompt_id": "p5", "prompt": "x", "generator": "A", "video": "sub/../good.mp4"},  # 5 ..
        {"prompt_id": "p6", "prompt": "x", "generator": "A", "video": str(link)},  # 6 symlink escaping
        {"prompt_id": "p1", "prompt": "a cat", "generator": "A", "video": str(other)},  # 7 duplicate
        {"prompt_id": "p7", "prompt": "x", "generator": "A", "video": str(good)},  # 8 same file again
        {"prompt_id": "p1", "prompt": "a dog", "generator": "B", "video": str(other)},  # 9 text differs
        {"prompt_id": "p8", "prompt": "x", "generator": "A", "video": "https://example.com/v.mp4"},  # 10 URL off
        {"prompt_id": "p9", "prompt": "x", "generator": "A", "video": str(directory)},  # 11 a directory
        {"prompt_id": "p10", "prompt": "x", "generator": "A", "video": str(other), "tags": "{bad json"},  # 12
    ]
    payload = "".join(json.dumps(r) + "\n" for r in rows) + "{not json}\n" + "[1, 2]\n"  # 13, 14
    job = manifest_import(project=project, file_obj=io.BytesIO(payload.encode()), file_name="m.jsonl")
    errors = _errors(job)
    assert job.total_rows == 14
    assert job.created_rows == 1
    assert set(errors) == set(range(2, 15))
    assert "missing value for 'prompt'" in errors[2]
    assert "file not found" in errors[3]
    assert "outside the allowed import roots" in errors[4]
    assert "'..'" in errors[5]
    assert "outside the allowed import roots" in errors[6]
    assert "duplicate of row 1" in errors[7]
    assert "already used by row 1" in errors[8]
    assert "prompt text differs from row 1" in errors[9]
    assert "URL import is disabled" in errors[10]
    assert "not a regular file" in errors[11]
    assert errors[12].startswith("tags:")
    assert "not valid JSON" in errors[13]
    assert "JSON object" in errors[14]
    assert list(Video.objects.filter(project=project).values_list("source", flat=True)) == [str(good)]


def test_reimport_changes_nothing(project, root):
    files = [_file(root, f"v{i}.mp4") for i in range(4)]
    data = [
        ["p1", "a", "A", str(files[0]), ""],
        ["p1", "a", "B", str(files[1]), ""],
        ["p2", "b", "A", str(files[2]), ""],
        ["p2", "b", "B", str(files[3]), ""],
    ]
    first = manifest_import(project=project, file_obj=_csv(data), file_name="m.csv")
    before = list(Video.objects.order_by("id").values_list("id", "prompt_id", "generator_id", "source", "updated_at"))
    second = manifest_import(project=project, file_obj=_csv(data), file_name="m.csv")
    assert first.created_rows == 4
    assert (second.created_rows, second.unchanged_rows, second.error_rows) == (0, 4, 0)
    after = list(Video.objects.order_by("id").values_list("id", "prompt_id", "generator_id", "source", "updated_at"))
    assert before == after
    assert Prompt.objects.filter(project=project).count() == 2


def test_conflicts_with_stored_rows_are_reported_and_stored_rows_kept(project, root):
    a, b, c = (_file(root, f"v{i}.mp4") for i in range(3))
    manifest_import(project=project, file_obj=_csv([["p1", "a cat", "A", str(a), ""]]), file_name="1.csv")
    job = manifest_import(
        project=project,
        file_obj=_csv(
            [
                ["p1", "a cat", "A", str(b), ""],  # other file for a stored prompt/generator
                ["p2", "x", "B", str(a), ""],
            ]
        ),  # stored file for another prompt
        file_name="2.csv",
    )
    errors = _errors(job)
    assert set(errors) == {1, 2}
    assert "already stored from another file" in errors[1]
    assert "already stored for prompt 'p1'" in errors[2]
    job = manifest_import(project=project, file_obj=_csv([["p1", "another text", "B", str(c), ""]]), file_name="3.csv")
    assert "already stored with different text" in _errors(job)[1]
    assert Video.objects.get(project=project).source == str(a)


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (b"", "m.csv", "empty"),
        (b"prompt_id,prompt,generator\np1,x,A\n", "m.csv", "missing column(s) video"),
        (b"\xff\xfe\x00garbage", "m.csv", "not UTF-8"),
        (b"", "m.jsonl", "empty"),
    ],
)
def test_unreadable_file_is_refused_whole(project, content, name, reason):
    job = manifest_import(project=project, file_obj=io.BytesIO(content), file_name=name)
    assert job.status == ImportJob.STATUS_FAILED
    assert reason in job.error
    assert not Video.objects.filter(project=project).exists()


def test_csv_row_with_too_many_cells(project, root):
    a = _file(root, "a.mp4")
    job = manifest_import(
        project=project,
        file_obj=io.BytesIO(f"prompt_id,prompt,generator,video\np1,x,A,{a},extra\n".encode()),
        file_name="m.csv",
    )
    assert "5 cells for 4 columns" in _errors(job)[1]


def test_import_uses_bulk_queries(project, root, django_assert_max_num_queries):
    rows = []
    for i in range(300):
        path = _file(root, f"bulk/{i}.mp4")
        rows.append([f"p{i // 3}", f"prompt {i // 3}", f"G{i % 3}", str(path), ""])
    with django_assert_max_num_queries(30):
        job = manifest_import(project=project, file_obj=_csv(rows), file_name="m.csv")
    assert job.created_rows == 300


def test_report_lists_media_failures_with_row_numbers(project, root, django_capture_on_commit_callbacks):
    _file(root, "text.mp4", b"hello, I am not a video")
    with django_capture_on_commit_callbacks(execute=True):
        job = manifest_import(project=project, file_obj=_csv([["p1", "a", "A", "text.mp4", ""]]), file_name="m.csv")
    report = import_report(job=job)
    assert report["media"] == {"pending": 0, "ready": 0, "failed": 1}
    assert report["media_failures"][0]["row"] == 1
    assert report["media_failures"][0]["message"]
