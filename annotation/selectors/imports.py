"""Reads for import reports: row errors and, once media work has run, failed videos."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from annotation.models import ImportJob, Video


def _media_counts(counts: dict[str, int]) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in (Video.STATUS_PENDING, Video.STATUS_READY, Video.STATUS_FAILED)}


def _report(job: ImportJob, *, media: dict[str, int], row_errors: list, failed: list) -> dict[str, Any]:
    return {
        "id": job.pk,
        "project": job.project_id,
        "kind": job.kind,
        "file_name": job.file_name,
        "status": job.status,
        "error": job.error,
        "total_rows": job.total_rows,
        "created_rows": job.created_rows,
        "unchanged_rows": job.unchanged_rows,
        "error_rows": job.error_rows,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "media": _media_counts(media),
        "row_errors": row_errors,
        "media_failures": [
            {"row": f["import_row"], "field": "video", "message": f["error"], "source": f["source"]} for f in failed
        ],
    }


def import_report(*, job: ImportJob, max_rows: int = 1000) -> dict[str, Any]:
    """The whole report of one import, as plain data (rows capped at ``max_rows`` each)."""
    media = dict(
        Video.objects.filter(import_job=job).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    row_errors = list(job.row_errors.values("row", "field", "message")[:max_rows])
    failed = list(
        Video.objects.filter(import_job=job, status=Video.STATUS_FAILED)
        .order_by("import_row")
        .values("import_row", "source", "error")[:max_rows]
    )
    return _report(job, media=media, row_errors=row_errors, failed=failed)


def import_summaries(*, project_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The project's latest ``limit`` imports as :func:`import_report` gives them with
    ``max_rows=0`` (counts, no rows), in two queries whatever the number of imports."""
    jobs = list(ImportJob.objects.filter(project_id=project_id)[:limit])
    media: dict[int, dict[str, int]] = {job.pk: {} for job in jobs}
    rows = (
        Video.objects.filter(import_job__in=[job.pk for job in jobs])
        .values_list("import_job", "status")
        .annotate(n=Count("id"))
        .values_list("import_job", "status", "n")
    )
    for job_id, status, n in rows:
        media[job_id][status] = n
    return [_report(job, media=media[job.pk], row_errors=[], failed=[]) for job in jobs]


def project_overview(*, project_id: int) -> dict[str, Any]:
    """Counts for the project page."""
    from annotation.models import Generator, Judgment, Pair, Prompt  # noqa: PLC0415

    videos = dict(
        Video.objects.filter(project_id=project_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "prompts": Prompt.objects.filter(project_id=project_id).count(),
        "generators": list(Generator.objects.filter(project_id=project_id).values_list("name", flat=True)),
        "videos": {s: videos.get(s, 0) for s in (Video.STATUS_PENDING, Video.STATUS_READY, Video.STATUS_FAILED)},
        "pairs": Pair.objects.filter(project_id=project_id).count(),
        "judgments": Judgment.objects.filter(project_id=project_id).count(),
    }
