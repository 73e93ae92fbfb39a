"""The bookkeeping every importer shares (manifests, judgments, gold, scores): start a job, refuse a
whole file, or finish with counts and the per-row errors; and the column checks of the importers
whose extra columns are question keys (judgments, gold)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from annotation.manifest import FileRefused, Row, RowErrors, text_value
from annotation.models import ImportJob, ImportRowError, Project

_BATCH = 2000


def import_job_start(*, project: Project, kind: str, file_name: str, user: AbstractBaseUser | None) -> ImportJob:
    return ImportJob.objects.create(project=project, kind=kind, file_name=file_name[:300], created_by=user)


def import_job_refuse(*, job: ImportJob, reason: str) -> ImportJob:
    """The file as a whole could not be read: nothing was stored."""
    job.status, job.error, job.finished_at = ImportJob.STATUS_FAILED, reason, timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    return job


def import_columns_check(*, columns: Iterable[str], known: Iterable[str], questions: Iterable[str]) -> None:
    """Raise FileRefused naming every column that is neither ``known`` nor a question key: a typo in a
    question column must refuse the file, not silently drop its answers."""
    keys = list(questions)
    unknown = sorted(set(columns) - set(known) - set(keys))
    if unknown:
        raise FileRefused(
            f"unknown column(s) {', '.join(unknown)}: not questions of this project (questions: {', '.join(keys)})"
        )


def import_base_values(*, row: Row, columns: tuple[str, ...], errors: RowErrors) -> dict[str, str] | None:
    """The row's text in each of ``columns``; None (with one error per empty column) when any is empty."""
    values = {key: text_value(row.data, key) for key in columns}
    missing = [key for key in columns if not values[key]]
    for key in missing:
        errors.add(row.number, key, f"missing value for '{key}'")
    return None if missing else values


def import_job_finish(
    *,
    job: ImportJob,
    total: int,
    created: int,
    unchanged: int,
    errors: Iterable[tuple[int, str, str]],
) -> ImportJob:
    """Store the row errors (row, field, message) and the counts; call inside the import's transaction."""
    error_rows: set[int] = set()
    items = []
    for row, field, message in errors:
        error_rows.add(row)
        items.append(ImportRowError(job=job, row=row, field=field, message=message[:2000]))
    ImportRowError.objects.bulk_create(items, batch_size=_BATCH)
    job.total_rows, job.created_rows, job.unchanged_rows = total, created, unchanged
    job.error_rows = len(error_rows)
    job.status, job.finished_at = ImportJob.STATUS_DONE, timezone.now()
    job.save(update_fields=["total_rows", "created_rows", "unchanged_rows", "error_rows", "status", "finished_at"])
    return job
