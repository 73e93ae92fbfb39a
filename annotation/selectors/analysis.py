"""The analysis summary of a project: :func:`analysis.analyze` over its judgments, cached.

The cache key holds the judgments' stamp (count, largest id, latest ``updated_at``, excluded
raters, rubric), so a new judgment or an exclusion makes the next request recompute. The
dashboard may replace this caching later; the inputs are built by ``judgments_frame``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from django.core.cache import cache
from django.utils import timezone

from annotation.selectors.labels import judgments_frame, judgments_stamp, question_keys

logger = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP_ROUNDS = 100
ANALYSIS_CACHE_SECONDS = 24 * 3600


def project_scores_frame(*, project_id: int) -> tuple[pd.DataFrame | None, str]:
    """Metric scores in :mod:`analysis`'s video form, or None and why not."""
    try:
        from metrics.registry import all_metrics  # noqa: PLC0415 - optional app
        from metrics.selectors import scores_frame  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - metrics app not installed
        return None, f"metric scores unavailable: {exc}"
    frame = scores_frame(project_id=project_id)
    if frame.empty:
        return None, "no metric scores"
    # One metric name per (metric, version) when several versions are stored (e.g. imports).
    versions = frame.groupby("metric")["version"].nunique()
    multi = set(versions[versions > 1].index)
    if multi:
        frame = frame.assign(metric=[f"{m}@{v}" if m in multi else m
                                     for m, v in zip(frame["metric"], frame["version"], strict=True)])
    directions = {name: metric.higher_is_better for name, metric in all_metrics().items()}
    frame = frame.assign(higher_is_better=[directions.get(m.split("@")[0], True) for m in frame["metric"]])
    return frame[["generator", "prompt_id", "metric", "value", "higher_is_better"]], ""


def project_analysis(
    *, project_id: int, bootstrap_rounds: int = DEFAULT_BOOTSTRAP_ROUNDS, dawid_skene: bool = False
) -> dict[str, Any]:
    """``analysis.analyze`` of the project's judgments (excluded raters left out) and scores.

    Returns ``{"analysis": <analyze result>, "computed_at", "cached", "judgments_stamp"}``.
    """
    stamp = judgments_stamp(project_id=project_id)
    key = f"vj:analysis:{project_id}:{stamp}:{bootstrap_rounds}:{int(dawid_skene)}"
    cached = cache.get(key)
    if cached is not None:
        return {**cached, "cached": True}
    from analysis import analyze  # noqa: PLC0415 - pure package, loaded on use

    questions = question_keys(project_id=project_id)
    frame = judgments_frame(project_id=project_id, questions=questions, with_context=True)
    scores, reason = project_scores_frame(project_id=project_id)
    if frame.empty:
        scores = None
    result = analyze(frame, scores, questions=questions, bootstrap_rounds=bootstrap_rounds, dawid_skene=dawid_skene)
    if reason:
        logger.debug("analysis of project %s without scores: %s", project_id, reason)
    value = {"analysis": result, "computed_at": timezone.now().isoformat(), "judgments_stamp": stamp,
             "scores": reason or "included"}
    cache.set(key, value, ANALYSIS_CACHE_SECONDS)
    return {**value, "cached": False}
