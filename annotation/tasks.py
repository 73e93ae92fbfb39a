"""Celery tasks of the media queue: thin wrappers that receive ids and call a service."""

from __future__ import annotations

from celery import shared_task

from annotation.services.videos import TransientMediaError, video_process


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientMediaError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=900,
    time_limit=960,
)
def video_process_task(self, video_id: int) -> str | None:
    video = video_process(video_id=video_id)
    return video.status if video is not None else None


# Tasks defined in their own modules, imported here so that every worker registers them.
from annotation import tasks_dashboard, tasks_exports  # noqa: E402,F401
