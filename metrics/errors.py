"""Exceptions that decide what happens to a score: stored as failed, retried, or skipped.

- :class:`PermanentMetricError` and its subclasses are stored as a failed score with the
  message as its reason; running again would give the same answer.
- :class:`BackendNotConfigured` stores nothing: the metric shows as "not configured" until an
  operator fixes the setting named in the message.
- Anything else that escapes a task is treated as transient and retried with backoff.
"""

from __future__ import annotations


class PermanentMetricError(Exception):
    """A failure that running again would repeat. Its message is the stored reason."""


class VideoDecodeError(PermanentMetricError):
    """The video file is missing, unreadable or yields no frames."""


class MetricInputError(PermanentMetricError):
    """The video decoded, but a metric cannot be computed from it (e.g. one frame only)."""


class BackendNotConfigured(Exception):
    """Weights or a model a metric needs are missing. ``setting`` names what to fix."""

    def __init__(self, backend: str, setting: str, message: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.setting = setting
