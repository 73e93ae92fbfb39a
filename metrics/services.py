"""Writes: enqueue metric work, compute and store scores, import external scores.

Heavy modules (the engine, OpenCV, torch) are imported inside the functions that compute, so
the web process can import this module to enqueue without loading them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import Video
from annotation.services.dashboard import dashboard_invalidate
from config.tasks import enqueue_many_on_commit, enqueue_on_commit
from metrics.backends import backend_identity
from metrics.external import metric_scores_import
from metrics.models import MetricBackendStatus, MetricScore
from metrics.registry import Metric, resolve_metrics
from metrics.selectors import metric_scores_missing

logger = logging.getLogger(__name__)

__all__ = [
    "metric_scores_compute",
    "metric_scores_enqueue_for_video",
    "metric_scores_enqueue_missing",
    "metric_scores_import",
    "metric_scores_record_failure",
]


def _batch_size() -> int:
    return max(1, int(getattr(settings, "METRICS_BATCH_SIZE", 8)))


def metric_scores_enqueue_for_video(*, video_id: int) -> int:
    """Call inside the transaction that marks a video ready. Enqueues, on commit, one task for
    the enabled metrics the video lacks at their current version; returns how many tasks (0
    when nothing is missing, the video is not ready, or ``METRICS_ENQUEUE_ON_READY`` is off)."""
    if not getattr(settings, "METRICS_ENQUEUE_ON_READY", True):
        return 0
    if not metric_scores_missing(video_ids=[video_id]):
        return 0
    from metrics.tasks import metrics_compute_batch

    enqueue_on_commit(metrics_compute_batch, [video_id])
    return 1


def metric_scores_enqueue_missing(
    *,
    project_id: int,
    metric_names: list[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
    batch_size: int | None = None,
) -> int:
    """Enqueue, on commit, batches of the project's ready videos that lack some of the named
    (default: enabled) metrics. Returns the number of tasks."""
    from metrics.tasks import metrics_compute_batch

    metrics = resolve_metrics(metric_names)
    missing = metric_scores_missing(project_id=project_id, metrics=metrics, force=force, retry_failed=retry_failed)
    ids = sorted(missing)
    size = batch_size or _batch_size()
    args = [(ids[i : i + size], metric_names or None, force, retry_failed) for i in range(0, len(ids), size)]
    enqueue_many_on_commit(metrics_compute_batch, args)
    return len(args)


def _video_path(video: Video) -> Path | None:
    relative = video.browser or video.original
    if not relative:
        return None
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def _score_write(*, video_id: int, score: Any, existing: MetricScore | None, force: bool, retry_failed: bool) -> bool:
    """Store one computed score (inside the caller's transaction). An external score is never
    replaced; an existing computed one only with ``force`` (or ``retry_failed`` if failed)."""
    fields = {
        "value": score.value if score.ok else None,
        "status": MetricScore.STATUS_OK if score.ok else MetricScore.STATUS_FAILED,
        "error": score.error,
        "details": score.details,
        "source": MetricScore.SOURCE_COMPUTED,
        "computed_at": timezone.now(),
    }
    if existing is None:
        MetricScore.objects.create(video_id=video_id, metric=score.metric, version=score.version, **fields)
        return True
    if existing.source == MetricScore.SOURCE_EXTERNAL:
        return False
    if force or (retry_failed and existing.status == MetricScore.STATUS_FAILED):
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(fields))
        return True
    return False  # another worker stored it first: one score per video, metric and version


def _store_scores(*, video_id: int, scores: list[Any], force: bool = False, retry_failed: bool = False) -> int:
    """All of one video's new scores in one transaction, with the video row locked so that
    two workers never interleave; a crash half-way leaves none of them."""
    if not scores:
        return 0
    with transaction.atomic():
        project_ids = list(Video.objects.select_for_update().filter(pk=video_id).values_list("project_id", flat=True))
        if not project_ids:
            return 0  # deleted meanwhile
        existing = {
            (s.metric, s.version): s
            for s in MetricScore.objects.filter(video_id=video_id, metric__in=[score.metric for score in scores])
        }
        written = 0
        for score in scores:
            written += _score_write(
                video_id=video_id,
                score=score,
                existing=existing.get((score.metric, score.version)),
                force=force,
                retry_failed=retry_failed,
            )
        if written:  # the project's cached analysis (metric alignment) is stale after commit
            dashboard_invalidate(project_id=project_ids[0])
        return written


def _record_backends(engine: Any) -> None:
    """Tell the web process what this worker found (only writes when it changed)."""
    reports = {name: (True, "", "") for name in engine.backends}
    reports.update({name: (False, exc.setting, str(exc)) for name, exc in engine.problems.items()})
    for name, (configured, setting, message) in reports.items():
        identity = backend_identity(name)
        current = MetricBackendStatus.objects.filter(backend=name).first()
        if current and (current.configured, current.setting, current.message, current.identity) == (
            configured,
            setting,
            message,
            identity,
        ):
            continue
        if not configured:  # logged when first found, not for every task
            logger.error("metric backend %s is not configured: %s", name, message)
        MetricBackendStatus.objects.update_or_create(
            backend=name,
            defaults={
                "configured": configured,
                "setting": setting,
                "message": message,
                "identity": identity,
                "checked_at": timezone.now(),
            },
        )


def metric_scores_compute(
    *,
    video_ids: Iterable[int],
    metric_names: list[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
    device: str | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Compute and store what the ready videos lack (idempotent: only missing scores, unless
    ``force``). Each video is decoded once; CLIP frames are batched across the videos. Each
    video's scores are written in one transaction as soon as it is done. Returns a report:
    videos, stored, failed, not_configured {metric: reason}. ``progress(n)`` is called as
    videos finish. Transient errors propagate (the task retries)."""
    from metrics.engine import Engine, ScoreResult
    from metrics.inputs import VideoJob

    metrics = resolve_metrics(metric_names)
    missing = metric_scores_missing(video_ids=video_ids, metrics=metrics, force=force, retry_failed=retry_failed)
    videos = Video.objects.filter(id__in=list(missing)).select_related("prompt").order_by("id")
    report: dict[str, Any] = {"videos": len(missing), "stored": 0, "failed": 0, "not_configured": {}}
    jobs, unreadable = [], []
    for video in videos:
        path = _video_path(video)
        job = VideoJob(
            key=video.id,
            path=path or Path(),
            metrics=missing[video.id],
            text=video.prompt.text,
            tags=video.prompt.tags or {},
            native_size=(video.width, video.height) if video.width and video.height else None,
        )
        (jobs if path else unreadable).append(job)

    def store(video_id: int, scores: list[ScoreResult]) -> None:
        report["stored"] += _store_scores(video_id=video_id, scores=scores, force=force, retry_failed=retry_failed)
        report["failed"] += sum(1 for s in scores if not s.ok)
        if progress:
            progress(1)

    for job in unreadable:
        reason = "video has no file inside MEDIA_ROOT (browser/original path)"
        store(job.key, [ScoreResult(m.name, m.current_version, None, reason, {"stage": "path"}) for m in job.metrics])
    engine = Engine(device=device, workers=workers)
    try:
        for result in engine.run(jobs):
            report["not_configured"].update(result.not_configured)
            store(result.key, result.scores)
    finally:
        _record_backends(engine)
    return report


def metric_scores_record_failure(*, video_ids: Iterable[int], metric_names: list[str] | None, reason: str) -> int:
    """Store ``reason`` as a failed score for every missing score of these videos (a task that
    gave up after its retries), so that the status page shows why instead of "pending"."""
    from metrics.engine import ScoreResult

    metrics: list[Metric] = resolve_metrics(metric_names)
    stored = 0
    for video_id, needed in metric_scores_missing(video_ids=video_ids, metrics=metrics).items():
        scores = [ScoreResult(m.name, m.current_version, None, reason[:1000], {"stage": "task"}) for m in needed]
        stored += _store_scores(video_id=video_id, scores=scores)
    return stored
