"""Celery tasks of the ``metrics`` queue: thin wrappers that receive ids and call services.

``metrics_compute_batch`` is idempotent (it computes only what is missing, and the database
holds one score per video, metric and version), acknowledged late (a worker killed mid-task
has its message redelivered; each video's scores are written in one transaction, so nothing
partial is left), and retried with exponential backoff on anything unexpected. After the
last retry the missing scores are stored as failed with the reason, so nothing stays
"pending" for ever. Time limits are per batch (``METRICS_BATCH_SIZE`` videos). Run in process
(no broker), retries happen at once inside the call and a final failure is not raised, so a
caller's commit is never broken by metric work.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from django.conf import settings

from metrics.services import metric_scores_compute, metric_scores_record_failure

logger = logging.getLogger(__name__)

SOFT_TIME_LIMIT = int(getattr(settings, "METRICS_TASK_SOFT_TIME_LIMIT", 1800))
TIME_LIMIT = int(getattr(settings, "METRICS_TASK_TIME_LIMIT", SOFT_TIME_LIMIT + 120))
MAX_RETRIES = int(getattr(settings, "METRICS_TASK_MAX_RETRIES", 5))


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: about 15 s, 30 s, 60 s ... capped at 15 minutes."""
    return min(900.0, 15.0 * 2**retries) * random.uniform(0.75, 1.25)


@shared_task(
    bind=True,
    name="metrics.tasks.metrics_compute_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
    ignore_result=True,
)
def metrics_compute_batch(
    self: Any,
    video_ids: list[int],
    metric_names: list[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> dict[str, Any]:
    retries = self.request.retries
    while True:
        try:
            return metric_scores_compute(
                video_ids=video_ids, metric_names=metric_names, force=force, retry_failed=retry_failed
            )
        except Exception as exc:
            if retries >= self.max_retries:
                logger.exception("metrics for videos %s failed after %d retries", video_ids, retries)
                reason = f"gave up after {retries} retries: {type(exc).__name__}: {exc}"
                metric_scores_record_failure(video_ids=video_ids, metric_names=metric_names, reason=reason)
                if self.request.is_eager:  # in process: never break the caller's commit
                    return {"videos": len(video_ids), "gave_up": reason}
                raise
            logger.warning("metrics for videos %s failed (%s); retrying", video_ids, exc)
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=retry_countdown(retries)) from exc
            retries += 1  # in process (embedded default, tests): retry at once, in this call
