"""Celery task for exports too large to stream in one request: receives an id, calls the service."""

from __future__ import annotations

from celery import shared_task

from annotation.services.exports import export_job_run


@shared_task(
    name="annotation.tasks_exports.export_job_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=0,
    soft_time_limit=3300,
    time_limit=3600,
)
def export_job_run_task(job_id: int) -> str | None:
    job = export_job_run(job_id=job_id)
    return job.status if job is not None else None
