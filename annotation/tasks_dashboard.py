"""Celery task that refreshes a project's cached analysis (the API's and the dashboard's)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from annotation.models import Project
from annotation.selectors.analysis import AnalysisParams
from annotation.services.dashboard import project_analysis_refresh


@shared_task(
    name="annotation.tasks_dashboard.project_analysis_refresh_task",
    acks_late=True,
    max_retries=0,  # a lost refresh is requested again by the next change or stale read
    soft_time_limit=1800,
    time_limit=1900,
)
def project_analysis_refresh_task(project_id: int, params: dict[str, Any] | None = None) -> str:
    """Recompute the entry for ``params`` (default parameters when None) unless it is current."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return "project deleted"
    entry = project_analysis_refresh(project=project, params=AnalysisParams.from_dict(params))
    return str(entry["token"])
