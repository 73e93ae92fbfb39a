"""Exports: stream a file now, or write it in a background job when the project is large.

Everything streams with bounded memory (see :mod:`annotation.exports`). The API streams
projects up to ``EXPORT_SYNC_MAX_JUDGMENTS`` judgments (default 200,000) and answers larger
ones with an :class:`~annotation.models.ExportJob` that a task writes under ``EXPORT_ROOT``
(default ``MEDIA_ROOT/exports``, never served as media) and the API then downloads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from annotation.exports.raw import raw_batches
from annotation.exports.spec import ExportSpec, spec_from_options
from annotation.exports.videos import media_url_prefix
from annotation.exports.writers import write_batches
from annotation.models import ExportJob, Judgment, Membership, Project, Question
from config.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

DEFAULT_SYNC_MAX_JUDGMENTS = 200_000
#: Seconds between progress writes of a running job.
_PROGRESS_EVERY_SECONDS = 1.0
Progress = Callable[[int, int], None]  # (rows read so far, rows written so far)


@dataclass
class ExportStream:
    """A file being produced: its name, media type and byte chunks (lazy)."""

    spec: ExportSpec
    file_name: str
    content_type: str
    chunks: Iterator[bytes]


def _question_keys(project_id: int) -> list[str]:
    return list(Question.objects.filter(project_id=project_id).values_list("key", flat=True))


def _excluded_rater_ids(project_id: int) -> list[int]:
    return sorted(Membership.objects.filter(project_id=project_id, excluded=True).values_list("user_id", flat=True))


def export_sync_max_judgments() -> int:
    return int(getattr(settings, "EXPORT_SYNC_MAX_JUDGMENTS", DEFAULT_SYNC_MAX_JUDGMENTS))


def export_root() -> Path:
    root = getattr(settings, "EXPORT_ROOT", None)
    return Path(root) if root else Path(settings.MEDIA_ROOT) / "exports"


def export_spec(*, project: Project, options: Mapping[str, Any]) -> ExportSpec:
    """Validated options for ``project`` (raises ``ExportOptionError`` with per-option messages)."""
    return spec_from_options(options, question_keys=_question_keys(project.pk))


def export_is_large(*, project: Project) -> bool:
    """Whether the API should answer with a job rather than stream the file."""
    return Judgment.objects.filter(project_id=project.pk).count() > export_sync_max_judgments()


def _counted(batches: Iterable[pa.RecordBatch], on_rows: Callable[[int], None] | None) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if on_rows is not None:
            on_rows(batch.num_rows)
        yield batch


def export_stream(
    *, project: Project, spec: ExportSpec, base_url: str = "", on_progress: Progress | None = None
) -> ExportStream:
    """The export file of ``project`` as lazily produced chunks.

    Nothing is read until the first chunk is asked for; every kind streams with bounded memory
    (labels and preference: vote counts per pair from the database, batch by batch; see
    :mod:`annotation.exports.labels`). ``base_url`` makes ``videos=url`` references absolute.
    ``on_progress(read, written)`` is called per batch: judgments read (raw: rows; labels and
    preference: judgments counted) and rows written so far.
    """
    # Only URL references need the media route; resolving it loads every URL module (and what
    # they import), which a worker writing paths need not pay for.
    prefix = media_url_prefix(base_url) if spec.videos == "url" else ""
    keys = _question_keys(project.pk)
    counts = {"read": 0, "written": 0}

    def on_read(n: int) -> None:
        counts["read"] += n

    if spec.kind == "raw":
        schema, batches = raw_batches(
            project_id=project.pk,
            spec=spec,
            question_keys=keys,
            excluded_ids=_excluded_rater_ids(project.pk),
            video_prefix=prefix,
        )
    else:
        # the aggregation (and pandas, through the labels selectors) loads only for the kinds that need it
        from annotation.exports.labels import label_batches  # noqa: PLC0415

        schema, batches = label_batches(
            project_id=project.pk, spec=spec, question_keys=keys, video_prefix=prefix, on_read=on_read
        )

    def on_rows(n: int) -> None:
        counts["written"] += n
        if spec.kind == "raw":
            counts["read"] += n
        if on_progress is not None:
            on_progress(counts["read"], counts["written"])

    name = spec.file_name(project_id=project.pk, project_name=project.name, on=timezone.now().date())
    chunks = write_batches(_counted(batches, on_rows), schema, spec.format)
    return ExportStream(spec=spec, file_name=name, content_type=spec.content_type, chunks=chunks)


def export_write(
    *, project: Project, spec: ExportSpec, target: IO[bytes], base_url: str = "", on_progress: Progress | None = None
) -> int:
    """Write the export to an open binary file; returns the bytes written."""
    size = 0
    for chunk in export_stream(project=project, spec=spec, base_url=base_url, on_progress=on_progress).chunks:
        target.write(chunk)
        size += len(chunk)
    return size


def export_job_create(
    *, project: Project, spec: ExportSpec, user: AbstractBaseUser | None = None, base_url: str = ""
) -> ExportJob:
    """Record an export job and enqueue its task once the transaction commits."""
    from annotation.tasks_exports import export_job_run_task  # noqa: PLC0415 - tasks import services

    options = {**spec.as_options(), "base_url": base_url}
    with transaction.atomic():
        job = ExportJob.objects.create(
            project=project,
            kind=spec.kind,
            format=spec.format,
            options=options,
            created_by=user if user is not None and user.is_authenticated else None,
            rows_expected=Judgment.objects.filter(project_id=project.pk).count(),
        )
        enqueue_on_commit(export_job_run_task, job.pk)
    return job


def export_job_path(*, job: ExportJob) -> Path | None:
    """The finished file of ``job`` on disk, or None."""
    if job.status != ExportJob.STATUS_DONE or not job.file_path:
        return None
    root = export_root().resolve()
    path = (root / job.file_path).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Write the file of a job (idempotent: a finished job is left alone; a rerun starts over)."""
    job = ExportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status == ExportJob.STATUS_DONE:
        return job
    options = dict(job.options)
    base_url = str(options.pop("base_url", "") or "")
    now = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.STATUS_RUNNING, started_at=now, error="",
                                               rows_read=0, rows_written=0)
    folder = export_root() / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"read": 0, "written": 0, "saved_at": 0.0}
    # While the export streams, its PostgreSQL connection is busy with COPY: progress goes
    # through a second connection of its own. SQLite reads through a cursor, and a second
    # connection would wait for the first one's lock: it shares the connection.
    own_connection = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
    progress_db = connections.create_connection(DEFAULT_DB_ALIAS) if own_connection else connections[DEFAULT_DB_ALIAS]

    def track(read: int, written: int) -> None:
        counts.update(read=read, written=written)
        clock = time.monotonic()
        if clock - counts["saved_at"] >= _PROGRESS_EVERY_SECONDS:
            counts["saved_at"] = clock
            with progress_db.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ExportJob._meta.db_table} SET rows_read = %s, rows_written = %s WHERE id = %s",
                    [read, written, job.pk],
                )

    try:
        spec = export_spec(project=job.project, options=options)
        stream = export_stream(project=job.project, spec=spec, base_url=base_url, on_progress=track)
        final = folder / stream.file_name
        partial = folder / (stream.file_name + ".part")
        size = 0
        with partial.open("wb") as target:
            for chunk in stream.chunks:
                target.write(chunk)
                size += len(chunk)
        os.replace(partial, final)
    except Exception as exc:
        logger.exception("export job %s failed", job.pk)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.STATUS_FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    finally:
        if own_connection:
            progress_db.close()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.STATUS_DONE,
        file_name=stream.file_name,
        file_path=str(final.relative_to(export_root())),
        size_bytes=size,
        rows_read=counts["read"],
        rows_written=counts["written"],
        rows_expected=counts["read"],
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job
