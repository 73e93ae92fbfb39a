"""Writes of the task outbox: record messages, send them, relay what a broker outage left.

The contract (config.tasks uses it): a message is recorded in the caller's transaction
(``outbox_add``), so it exists exactly when the work it asks for was committed; right after
the commit ``outbox_dispatch`` sends it and deletes its row. When the broker cannot be
reached the row stays, the caller's request still succeeds, and ``outbox_relay`` (run by
every Celery worker, see outbox.worker) sends it once the broker is back. Delivery is at
least once: a send whose row could not be deleted is sent again, which the tasks tolerate
(they are idempotent and compute only what is missing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

#: A send that fails is not retried in the caller's request: the relay does it later.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

Message = tuple[str, tuple | list, dict[str, Any]]


def outbox_add(*, messages: Iterable[Message]) -> list[int]:
    """Record task messages (name, args, kwargs) in the current transaction; returns their ids."""
    rows = [OutboxMessage(task=name, args=list(args), kwargs=dict(kwargs)) for name, args, kwargs in messages]
    if not rows:
        return []
    return [row.pk for row in OutboxMessage.objects.bulk_create(rows, batch_size=5000)]


def _send(rows: list[OutboxMessage]) -> tuple[list[int], str]:
    """Send ``rows`` in order over one broker connection; stop at the first failure.

    Returns (ids sent, error text or "")."""
    from config.celery import app  # noqa: PLC0415 - the web process imports Celery lazily

    sent: list[int] = []
    try:
        with app.producer_or_acquire() as producer:
            for row in rows:
                app.send_task(
                    row.task,
                    args=row.args,
                    kwargs=row.kwargs,
                    producer=producer,
                    retry=True,
                    retry_policy=PUBLISH_RETRY_POLICY,
                )
                sent.append(row.pk)
    except Exception as exc:  # broker unreachable (or a message it refused): the row stays
        return sent, f"{type(exc).__name__}: {exc}"
    return sent, ""


def _send_locked(queryset: Any) -> tuple[int, str]:
    """Lock the rows of ``queryset`` (skipping rows another sender holds), send, delete the
    sent ones, count a failed attempt on the first unsent one; all in one transaction."""
    with transaction.atomic():
        rows = list(queryset.select_for_update(skip_locked=True))
        if not rows:
            return 0, ""
        sent, error = _send(rows)
        if sent:
            OutboxMessage.objects.filter(pk__in=sent).delete()
        if error:
            failed = rows[len(sent)]
            failed.attempts += 1
            failed.last_error = error[:2000]
            failed.save(update_fields=["attempts", "last_error"])
        return len(sent), error


def outbox_dispatch(*, ids: list[int]) -> int:
    """Send the recorded messages ``ids`` now (call after their transaction committed).

    Never raises for an unreachable broker: the rows stay for the relay and a warning is
    logged. Returns how many were sent."""
    if not ids:
        return 0
    sent, error = _send_locked(OutboxMessage.objects.filter(pk__in=ids).order_by("id"))
    if error:
        logger.warning(
            "broker unavailable (%s): %d task message(s) kept in the outbox; a worker sends them when it is back",
            error,
            len(ids) - sent,
        )
    return sent


def outbox_relay(*, min_age_seconds: float | None = None, batch_size: int = 500) -> int:
    """Send every message older than ``min_age_seconds`` (default OUTBOX_RELAY_MIN_AGE_SECONDS:
    younger ones are still being sent by their own request). Stops at the first broker
    failure. Safe to run in many processes at once (rows are locked, SKIP LOCKED). Returns
    how many were sent."""
    if min_age_seconds is None:
        min_age_seconds = settings.OUTBOX_RELAY_MIN_AGE_SECONDS
    total = 0
    while True:
        cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
        # Fewest failed attempts first: a message the broker keeps refusing cannot hold up the rest.
        pending = OutboxMessage.objects.filter(created_at__lte=cutoff).order_by("attempts", "id")[:batch_size]
        sent, error = _send_locked(pending)
        total += sent
        if error:
            logger.warning("outbox relay: broker unavailable (%s); %d sent before it failed", error, total)
            return total
        if sent < batch_size:
            if total:
                logger.info("outbox relay: sent %d task message(s) left by a broker outage", total)
            return total
