"""Stored metric scores. One row per video, metric and version, enforced by the database."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class MetricScore(models.Model):
    """One metric's value for one video. ``status`` ok: ``value`` holds it; failed: ``error``
    says why (permanent: an undecodable video, a clip too short). ``details`` records the
    sampling and backend used, so a number can be reproduced. ``source`` external: imported
    from a file (``import_job`` says which), never overwritten by computation."""

    STATUS_OK = "ok"
    STATUS_FAILED = "failed"
    STATUS_CHOICES = [(STATUS_OK, "OK"), (STATUS_FAILED, "Failed")]
    SOURCE_COMPUTED = "computed"
    SOURCE_EXTERNAL = "external"
    SOURCE_CHOICES = [(SOURCE_COMPUTED, "Computed"), (SOURCE_EXTERNAL, "External")]

    video = models.ForeignKey("annotation.Video", on_delete=models.CASCADE, related_name="metric_scores")
    metric = models.CharField(max_length=64)
    version = models.CharField(max_length=128)
    value = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_OK)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES, default=SOURCE_COMPUTED)
    import_job = models.ForeignKey(
        "annotation.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["video", "metric", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["video", "metric", "version"], name="metricscore_unique_video_metric_version"
            ),
            models.CheckConstraint(condition=Q(status__in=["ok", "failed"]), name="metricscore_status_valid"),
            models.CheckConstraint(condition=Q(source__in=["computed", "external"]), name="metricscore_source_valid"),
            models.CheckConstraint(
                condition=(Q(status="ok") & Q(value__isnull=False))
                | (Q(status="failed") & Q(value__isnull=True) & ~Q(error="")),
                name="metricscore_ok_has_value_failed_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["metric", "version", "status"], name="metricscore_metric_version")]

    def __str__(self) -> str:
        return (
            f"{self.metric}@{self.version} of video {self.video_id}: {self.value if self.status == 'ok' else 'failed'}"
        )


class MetricBackendStatus(models.Model):
    """What a worker last found when it loaded a model backend (``clip``, ``flow``): whether
    it is configured and, if not, the message naming the setting to fix. Lets the web process
    show "not configured" without loading the model itself."""

    backend = models.CharField(max_length=32, unique=True)
    configured = models.BooleanField()
    setting = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    identity = models.CharField(max_length=200, blank=True, help_text="Model/weights the report is about.")
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["backend"]

    def __str__(self) -> str:
        return f"{self.backend}: {'configured' if self.configured else 'not configured'}"
