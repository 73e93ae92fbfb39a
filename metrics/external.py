"""Import per-video scores computed elsewhere (CSV or JSON Lines), validated row by row.

Columns: ``prompt_id`` (the prompt's external id), ``generator`` (its name in the project),
``metric``, ``value``, optional ``version`` (default ``"external"``). The file is read by the
importers' shared reader (``annotation.manifest.read_rows``, as manifests and judgments are),
plus one more form: a ``.json`` file holding a JSON array of objects. Every row is checked on
its own and a bad row never stops the good ones; row numbers are 1-based data rows (the CSV
header and blank JSON Lines are not counted; in a ``.json`` array, the item). A
score already imported is updated when its value changed; a computed score is never
overwritten. Imported scores are ordinary ``MetricScore`` rows with ``source="external"``, so
analysis treats them like computed ones.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.manifest import FileRefused, Row, read_rows
from annotation.models import Generator, ImportJob, Project, Prompt, Video
from annotation.services.import_jobs import import_job_finish, import_job_refuse, import_job_start
from metrics.models import MetricScore
from metrics.registry import current_versions

REQUIRED = ("prompt_id", "generator", "metric", "value")
DEFAULT_VERSION = "external"
METRIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_VERSION = 128
MAX_ERRORS_REPORTED = 1000


def _read_bytes(file_obj: Any) -> bytes:
    limit = int(getattr(settings, "IMPORT_MAX_UPLOAD_BYTES", 200 * 1024 * 1024))
    data = file_obj.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"the file is larger than IMPORT_MAX_UPLOAD_BYTES ({limit} bytes)")
    return data.encode() if isinstance(data, str) else data


def _rows(data: bytes, file_name: str) -> list[Row]:
    """Numbered rows (a row that cannot be parsed carries its ``error``); raises FileRefused."""
    if file_name.lower().endswith(".json") and data.lstrip(codecs.BOM_UTF8).lstrip().startswith(b"["):
        try:
            items = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise FileRefused(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise FileRefused(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
        return [Row(number, item) if isinstance(item, dict) else Row(number, {}, "each item must be a JSON object")
                for number, item in enumerate(items, start=1)]
    return list(read_rows(io.BytesIO(data), file_name, required=REQUIRED))


def _text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return "" if value is None else str(value).strip()


def _value(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be a number")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def metric_scores_import(*, project: Project, file_obj: Any, file_name: str, user: Any = None) -> dict[str, Any]:
    """Import a scores file into ``project``. Returns the report: job_id, status ("done" or
    "failed" when the whole file was refused, with ``error``), total_rows, created_rows,
    updated_rows, unchanged_rows, error_rows and errors [{row, field, message}] (1-based rows;
    the first 1000 are listed, all are stored on the ImportJob)."""
    job = import_job_start(project=project, kind=ImportJob.KIND_SCORES, file_name=file_name, user=user)
    report: dict[str, Any] = {
        "job_id": job.pk,
        "status": ImportJob.STATUS_DONE,
        "error": "",
        "file_name": job.file_name,
        "total_rows": 0,
        "created_rows": 0,
        "updated_rows": 0,
        "unchanged_rows": 0,
        "error_rows": 0,
        "errors": [],
    }
    errors: list[tuple[int, str, str]] = []
    try:
        rows = _rows(_read_bytes(file_obj), file_name)
    except FileRefused as exc:
        import_job_refuse(job=job, reason=str(exc))
        report.update(status=job.status, error=job.error)
        return report

    prompts = dict(Prompt.objects.filter(project=project).values_list("external_id", "id"))
    generators = dict(Generator.objects.filter(project=project).values_list("name", "id"))
    videos = {
        (p, g): v for v, p, g in Video.objects.filter(project=project).values_list("id", "prompt_id", "generator_id")
    }
    computed_versions = current_versions()
    metrics_in_file = {_text(row.data, "metric") for row in rows if not row.error}
    existing = {
        (s.video_id, s.metric, s.version): s
        for s in MetricScore.objects.filter(video__project=project, metric__in=metrics_in_file).only(
            "id", "video_id", "metric", "version", "value", "source", "status"
        )
    }
    seen: dict[tuple[int, str, str], int] = {}
    to_create: list[MetricScore] = []
    to_update: list[MetricScore] = []
    now = timezone.now()

    for row in rows:
        number, record = row.number, row.data
        if row.error:
            errors.append((number, "", row.error))
            continue
        row_errors: list[tuple[str, str]] = []
        prompt_key, generator_name = _text(record, "prompt_id"), _text(record, "generator")
        metric, version = _text(record, "metric"), _text(record, "version") or DEFAULT_VERSION
        prompt_id, generator_id = prompts.get(prompt_key), generators.get(generator_name)
        if not prompt_key:
            row_errors.append(("prompt_id", "required"))
        elif prompt_id is None:
            row_errors.append(("prompt_id", f"no prompt with external id {prompt_key!r} in this project"))
        if not generator_name:
            row_errors.append(("generator", "required"))
        elif generator_id is None:
            row_errors.append(("generator", f"no generator named {generator_name!r} in this project"))
        if not METRIC_NAME.match(metric):
            row_errors.append(("metric", "required: 1-64 letters, digits, '_', '.', ':' or '-'"))
        if len(version) > MAX_VERSION:
            row_errors.append(("version", f"at most {MAX_VERSION} characters"))
        elif computed_versions.get(metric) == version:
            row_errors.append(("version", f"version {version!r} of {metric!r} is computed here; use another version"))
        raw = record.get("value")
        value = None
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            row_errors.append(("value", "required"))
        else:
            try:
                value = _value(raw)
            except ValueError as exc:
                row_errors.append(("value", str(exc)))
        video_id = videos.get((prompt_id, generator_id)) if prompt_id and generator_id else None
        if prompt_id and generator_id and video_id is None:
            row_errors.append(("", f"no video of prompt {prompt_key!r} by generator {generator_name!r}"))
        if row_errors:
            errors.extend((number, field, message) for field, message in row_errors)
            continue
        key = (video_id, metric, version)
        if key in seen:
            errors.append((number, "", f"duplicate of row {seen[key]} (same video, metric and version)"))
            continue
        seen[key] = number
        current = existing.get(key)
        if current is None:
            to_create.append(
                MetricScore(
                    video_id=video_id,
                    metric=metric,
                    version=version,
                    value=value,
                    status=MetricScore.STATUS_OK,
                    source=MetricScore.SOURCE_EXTERNAL,
                    import_job=job,
                    computed_at=now,
                    details={"import_job": job.pk, "row": number},
                )
            )
        elif current.source != MetricScore.SOURCE_EXTERNAL:
            errors.append((number, "version", f"a computed score of {metric!r} has version {version!r}; use another"))
            seen.pop(key)
        elif current.value == value:
            report["unchanged_rows"] += 1
        else:
            current.value, current.import_job, current.computed_at = value, job, now
            current.details = {"import_job": job.pk, "row": number}
            to_update.append(current)

    with transaction.atomic():
        # ignore_conflicts: a concurrent import of the same rows must not fail this one
        MetricScore.objects.bulk_create(to_create, batch_size=1000, ignore_conflicts=True)
        MetricScore.objects.bulk_update(to_update, ["value", "import_job", "computed_at", "details"], batch_size=1000)
        if to_create or to_update:  # the project's cached analysis (metric alignment) is stale after commit
            from annotation.services.dashboard import dashboard_invalidate  # noqa: PLC0415

            dashboard_invalidate(project_id=project.pk)
        error_rows = len({row for row, _, _ in errors})
        report.update(
            total_rows=len(rows),
            created_rows=len(to_create),
            updated_rows=len(to_update),
            error_rows=error_rows,
            errors=[{"row": r, "field": f, "message": m} for r, f, m in errors[:MAX_ERRORS_REPORTED]],
        )
        import_job_finish(
            job=job, total=len(rows), created=len(to_create) + len(to_update),
            unchanged=report["unchanged_rows"], errors=errors,
        )
    return report
