"""Celery task that recomputes a project's dashboard analysis into the cache."""

from __future__ import annotations

from celery import shared_task

from annotation.services.dashboard import project_analysis_refresh


@shared_task(
    name="annotation.tasks_dashboard.project_analysis_refresh_task",
    max_retries=0,
    soft_time_limit=1800,
    time_limit=1900,
)
def project_analysis_refresh_task(project_id: int) -> str:
    result = project_analysis_refresh(project_id=project_id)
    return str(result.get("cache_stamp", ""))
