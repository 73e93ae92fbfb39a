"""Keeping the dashboard's cached analysis fresh after judgments change."""

from __future__ import annotations

from typing import Any

from config.tasks import enqueue_on_commit


def project_analysis_refresh(*, project_id: int, bootstrap_rounds: int = 1000) -> dict[str, Any]:
    """Recompute the project's unfiltered dashboard analysis into the cache (new stamp key)."""
    from annotation.selectors.dashboard import project_analysis  # noqa: PLC0415

    return project_analysis(project_id=project_id, bootstrap_rounds=bootstrap_rounds, refresh=True)


def dashboard_invalidate(*, project_id: int) -> None:
    """Call inside the transaction that changed judgments: once it commits, recompute in the background.

    Old cache entries need no deletion: their key holds the previous judgments stamp.
    """
    from annotation.tasks_dashboard import project_analysis_refresh_task  # noqa: PLC0415 - tasks import services

    enqueue_on_commit(project_analysis_refresh_task, project_id)
