"""The outbox relay inside every Celery worker: a consumer bootstep on the worker's timer.

The step starts each time the worker's consumer has (re)connected to the broker, relays at
once (so messages kept during an outage go out as soon as the broker is back) and then every
``OUTBOX_RELAY_SECONDS``; it stops when the connection is lost. It runs in the worker's main
process, between messages, on the event loop's timer (no thread, so a pool that forks later
inherits no lock held by it).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def relay_once() -> int:
    """Relay the outbox; never raises (a worker must not die of it). Closes its database
    connection afterwards: the main process holds none between runs."""
    from outbox.services import outbox_relay  # noqa: PLC0415 - apps are loaded by now

    try:
        return outbox_relay()
    except Exception:
        logger.exception("outbox relay failed; will try again")
        return 0
    finally:
        connections.close_all()


class OutboxRelayStep(bootsteps.StartStopStep):
    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None

    def start(self, parent: Any) -> None:
        interval = float(getattr(settings, "OUTBOX_RELAY_SECONDS", 10))
        if interval <= 0 or parent.timer is None:
            return
        relay_once()
        self.tref = parent.timer.call_repeatedly(interval, relay_once)

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop


def install(app: Any) -> None:
    """Add the relay to ``app``'s workers (idempotent)."""
    if OutboxRelayStep not in app.steps["consumer"]:
        app.steps["consumer"].add(OutboxRelayStep)
