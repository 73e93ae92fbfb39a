"""Task messages waiting for the broker (the transactional outbox of config.tasks)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    """One Celery task message, written in the same transaction as the rows its task reads.

    Deleted once the broker has accepted it. A row that stays means the broker could not be
    reached when its transaction committed: a worker's relay sends it when the broker is back
    (outbox.services.outbox_relay), so work queued during a broker outage is not lost.
    """

    task = models.CharField(max_length=200, help_text="The Celery task name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed sends so far.")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"], name="outbox_created")]
        constraints = [models.CheckConstraint(condition=~Q(task=""), name="outbox_task_named")]

    def __str__(self) -> str:
        return f"outbox {self.pk}: {self.task}{tuple(self.args)}"
