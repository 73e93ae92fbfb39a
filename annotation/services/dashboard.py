"""Keeping the one cached analysis of a project fresh (stale-while-revalidate, debounced).

- :func:`dashboard_invalidate`: call after changing anything the analysis reads (judgments,
  excluded raters, gold pairs, metric scores). After commit it writes a new change token and,
  when tasks go to a broker, requests one refresh: two cache operations, no query, safe on the
  rater's submit path. Without a broker the readers request the refresh.
- :func:`analysis_refresh_request`: enqueue the refresh task unless one was requested for the
  same project and parameters in the last ``DASHBOARD_REFRESH_DEBOUNCE_SECONDS`` (a cache
  ``add`` is the lock, so concurrent callers enqueue once).
- :func:`project_analysis_refresh`: the task's work: compute and store the entry.

A change refreshes the default parameters (what the dashboard and the API show by default);
entries of other parameters (dashboard filters, other bootstrap rounds) are refreshed when a
reader finds them stale.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from annotation.models import Project
from annotation.selectors.analysis import (
    ENTRY_SCHEMA,
    VARIANT_CACHE_SECONDS,
    AnalysisParams,
    analysis_change_token,
    analysis_compute,
    analysis_entry,
    analysis_entry_key,
    analysis_fingerprint,
    analysis_lock_key,
    analysis_token_key,
)
from config.tasks import enqueue

logger = logging.getLogger(__name__)


def analysis_refresh_request(*, project_id: int, params: AnalysisParams | None = None) -> bool:
    """Ask for a background refresh of the project's analysis for ``params`` (default: the
    dashboard's and the API's default).

    Enqueues the refresh task at once (it reads only committed data; writers go through
    :func:`dashboard_invalidate`, which calls this after commit) only if this call takes the
    debounce lock, so at most one task per project and parameters is enqueued per
    ``DASHBOARD_REFRESH_DEBOUNCE_SECONDS`` however many callers race. Returns True when a refresh
    has been requested (now, or by another caller within the window); False when the cache or
    the broker failed (logged; the next change or read asks again).
    """
    params = params or AnalysisParams()
    lock = analysis_lock_key(project_id=project_id, params=params)
    try:
        if not cache.add(lock, time.time(), settings.DASHBOARD_REFRESH_DEBOUNCE_SECONDS):
            return True
    except Exception:  # a cache outage must not fail the caller (a submit already committed)
        logger.warning("analysis refresh of project %s not requested: cache unavailable", project_id, exc_info=True)
        return False
    from annotation.tasks_dashboard import project_analysis_refresh_task  # noqa: PLC0415 - tasks import services

    try:
        enqueue(project_analysis_refresh_task, project_id, params.as_dict())
    except Exception:
        with contextlib.suppress(Exception):
            cache.delete(lock)  # let the next caller try again rather than wait out the window
        logger.warning("analysis refresh of project %s not enqueued", project_id, exc_info=True)
        return False
    return True


def _refresh_runs_on_a_worker() -> bool:
    """True when tasks go to a broker, so a refresh requested by a writer runs on a Celery worker.

    Without a broker (the embedded default, and tests) a task runs in the requesting process: a
    refresh there holds the interpreter for seconds, stalling the raters' requests served by
    the same process (measured: next/submit p99 of several seconds under load) or, inline,
    the submit itself. So there a change only marks the result stale, and the next reader (the
    dashboard, its poll, the API) requests the refresh.
    """
    return not settings.TASKS_IN_PROCESS


def _mark_changed(project_id: int) -> None:
    try:
        cache.set(analysis_token_key(project_id=project_id), uuid.uuid4().hex, None)
    except Exception:  # the judgment is stored; the analysis catches up on its next age check
        logger.warning("analysis of project %s not marked changed: cache unavailable", project_id, exc_info=True)
        return
    if _refresh_runs_on_a_worker():
        analysis_refresh_request(project_id=project_id)


def dashboard_invalidate(*, project_id: int) -> None:
    """Mark the project's cached analysis stale and request a debounced refresh, after commit.

    Call it inside (or after) the transaction that changed judgments, excluded raters, gold
    pairs or metric scores. It runs nothing until the transaction commits (at once outside
    one), then costs a cache ``set`` and a cache ``add`` (plus one enqueue per debounce window).
    Without a broker, where tasks run in the requesting process, it only marks the result stale
    and readers request the refresh (see :func:`_refresh_runs_on_a_worker`).
    Readers keep getting the previous result, marked stale, until the refresh stores a new one.
    Never raises for a cache or broker outage (logged): the caller's data is already committed.
    """
    transaction.on_commit(lambda: _mark_changed(project_id))


def project_analysis_refresh(
    *, project: Project, params: AnalysisParams | None = None, force: bool = False
) -> dict[str, Any]:
    """Compute the project's analysis for ``params`` and store it as the one cached entry.

    Idempotent: an entry already computed from the current change token and rubric is kept
    (only re-checked against the database fingerprint when it is older than
    ``DASHBOARD_RECHECK_SECONDS``, and recomputed only if that differs), unless ``force``.
    The token is read before the judgments, so a change committed during the computation
    leaves the new entry stale rather than wrongly fresh. An entry computed from a later
    snapshot (a concurrent refresh) is never overwritten by an earlier one. Returns the entry.
    """
    from annotation.selectors.labels import question_keys  # noqa: PLC0415

    params = params or AnalysisParams()
    project_id = project.pk
    snapshot_ns = time.time_ns()
    token = analysis_change_token(project_id=project_id)
    now = timezone.now()
    current = analysis_entry(project=project, params=params)
    if current is not None and not force and current["token"] == token:
        if current["questions"] == question_keys(project_id=project_id):
            age = (now - datetime.fromisoformat(current["checked_at"])).total_seconds()
            if age <= settings.DASHBOARD_RECHECK_SECONDS:
                return current
            if analysis_fingerprint(project_id=project_id) == current["fingerprint"]:
                return _store(project, params, {**current, "checked_at": now.isoformat()})
    fingerprint = analysis_fingerprint(project_id=project_id)
    entry = {
        "schema": ENTRY_SCHEMA,
        "project_id": project_id,
        "params": params.as_dict(),
        "token": token,
        "snapshot_ns": snapshot_ns,
        "fingerprint": fingerprint,
        **analysis_compute(project_id=project_id, params=params),
        "computed_at": now.isoformat(),
        "checked_at": now.isoformat(),
    }
    latest = analysis_entry(project=project, params=params)
    if latest is not None and latest.get("snapshot_ns", 0) > snapshot_ns:
        return latest  # a refresh that started later finished first: its result is newer
    return _store(project, params, entry)


def _store(project: Project, params: AnalysisParams, entry: dict[str, Any]) -> dict[str, Any]:
    timeout = None if params.is_default else VARIANT_CACHE_SECONDS
    cache.set(analysis_entry_key(project=project, params=params), entry, timeout)
    return entry
