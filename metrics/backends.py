"""Which model backend a metric depends on, and what this process can tell about it without
loading it (no torch here). Workers report what they found in ``MetricBackendStatus``."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from metrics.clip_config import clip_identity, clip_static_problem
from metrics.flow import flow_backend_name
from metrics.registry import Metric

BACKEND_FLOW = "flow"
BACKEND_CLIP = "clip"


def backend_of(metric: Metric) -> str | None:
    """``"clip"`` (or another model stage), ``"flow"`` for flow-based metrics, else None."""
    if metric.model_provider:
        return metric.model_provider
    if {"flow", "flow_backward"} & set(metric.inputs):
        return BACKEND_FLOW
    return None


def backend_identity(backend: str) -> str:
    if backend == BACKEND_CLIP:
        return clip_identity()
    if backend == BACKEND_FLOW:
        name = flow_backend_name()
        return f"raft:{Path(settings.RAFT_WEIGHTS).name}" if name == "raft" else name
    return backend


def backend_static_problem(backend: str) -> tuple[str, str]:
    """(setting, message) when settings alone show the backend cannot work, else ("", "")."""
    if backend == BACKEND_CLIP:
        return clip_static_problem()
    if backend == BACKEND_FLOW and flow_backend_name() == "raft" and not Path(settings.RAFT_WEIGHTS).is_file():
        return "RAFT_WEIGHTS", f"RAFT_WEIGHTS={settings.RAFT_WEIGHTS!r} does not exist or is not a file"
    return "", ""
