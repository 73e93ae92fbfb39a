"""Reads: what is missing, per-project progress, scores for the API, pages and analysis.

No torch, no OpenCV: these run in the web process.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import Count

from annotation.models import Video
from metrics.backends import backend_identity, backend_of, backend_static_problem
from metrics.models import MetricBackendStatus, MetricScore
from metrics.registry import Metric, all_metrics, current_versions, enabled_metrics

if TYPE_CHECKING:
    import pandas as pd

STATE_NOT_CONFIGURED = "not configured"
STATE_PENDING = "pending"
STATE_COMPLETE = "complete"
SCORES_FRAME_COLUMNS = ["video_id", "prompt_id", "generator", "metric", "version", "value"]


def metric_scores_missing(
    *,
    video_ids: Iterable[int] | None = None,
    project_id: int | None = None,
    metrics: list[Metric] | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> dict[int, list[Metric]]:
    """Ready videos (by id, or all of a project's) -> the metrics each still needs: enabled,
    applicable to its prompt, and without a stored score at the current version (a failed
    score counts as stored unless ``retry_failed``; ``force`` wants everything again)."""
    metrics = enabled_metrics() if metrics is None else metrics
    videos = Video.objects.filter(status=Video.STATUS_READY)
    if video_ids is not None:
        videos = videos.filter(id__in=list(video_ids))
    if project_id is not None:
        videos = videos.filter(project_id=project_id)
    rows = list(videos.order_by("id").values_list("id", "prompt__tags"))
    have: set[tuple[int, str, str]] = set()
    if not force and rows and metrics:
        scores = MetricScore.objects.filter(metric__in=[m.name for m in metrics])
        scores = scores.filter(video__project_id=project_id) if project_id is not None else scores
        if video_ids is not None or project_id is None:
            scores = scores.filter(video_id__in=[vid for vid, _ in rows])
        if retry_failed:
            scores = scores.exclude(status=MetricScore.STATUS_FAILED, source=MetricScore.SOURCE_COMPUTED)
        have = set(scores.values_list("video_id", "metric", "version"))
    versions = {m.name: m.current_version for m in metrics}
    missing: dict[int, list[Metric]] = {}
    for video_id, tags in rows:
        needed = [m for m in metrics if m.applies(tags) and (video_id, m.name, versions[m.name]) not in have]
        if needed:
            missing[video_id] = needed
    return missing


def backend_problem(backend: str | None) -> str:
    """Why a backend is not configured ('' when it is, or nobody has found otherwise): the
    settings as this process sees them, then the last report of a worker for these settings."""
    if backend is None:
        return ""
    _, static = backend_static_problem(backend)
    if static:
        return static
    report = MetricBackendStatus.objects.filter(backend=backend).first()
    if report and not report.configured and report.identity == backend_identity(backend):
        return report.message
    return ""


def metric_status_for_project(*, project_id: int) -> list[dict[str, Any]]:
    """Per enabled metric (then per imported external metric): done / pending / failed counts
    over the project's ready videos, failure reasons with counts, and whether it is configured.

    Keys: name, version, group, source ("computed"/"external"), higher_is_better, range,
    description, total (ready videos it applies to), done, pending, failed, not_applicable,
    failure_reasons [{reason, count}], configured, not_configured_reason, state
    ("complete", "pending" or "not configured").
    """
    ready = list(
        Video.objects.filter(project_id=project_id, status=Video.STATUS_READY).values_list("prompt__tags", flat=True)
    )
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for row in (
        MetricScore.objects.filter(video__project_id=project_id, video__status=Video.STATUS_READY)
        .values("metric", "version", "source", "status")
        .annotate(n=Count("id"))
    ):
        counts[(row["metric"], row["version"], row["source"], row["status"])] += row["n"]
    reasons: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in (
        MetricScore.objects.filter(
            video__project_id=project_id, video__status=Video.STATUS_READY, status=MetricScore.STATUS_FAILED
        )
        .values("metric", "version", "error")
        .annotate(n=Count("id"))
        .order_by("metric", "-n", "error")
    ):
        reasons[(row["metric"], row["version"])].append({"reason": row["error"], "count": row["n"]})

    problems: dict[str | None, str] = {}
    out = []
    for metric in enabled_metrics():
        backend = backend_of(metric)
        if backend not in problems:
            problems[backend] = backend_problem(backend)
        version = metric.current_version
        total = len(ready) if metric.applies_to is None else sum(1 for tags in ready if metric.applies(tags))
        done = counts[(metric.name, version, MetricScore.SOURCE_COMPUTED, MetricScore.STATUS_OK)]
        failed = counts[(metric.name, version, MetricScore.SOURCE_COMPUTED, MetricScore.STATUS_FAILED)]
        pending = max(0, total - done - failed)
        problem = problems[backend]
        out.append(
            {
                "name": metric.name,
                "version": version,
                "group": metric.group,
                "source": MetricScore.SOURCE_COMPUTED,
                "higher_is_better": metric.higher_is_better,
                "range": list(metric.range),
                "description": metric.description,
                "total": total,
                "done": done,
                "pending": pending,
                "failed": failed,
                "not_applicable": len(ready) - total,
                "failure_reasons": reasons.get((metric.name, version), []),
                "configured": not problem,
                "not_configured_reason": problem,
                "state": STATE_NOT_CONFIGURED if problem else (STATE_PENDING if pending else STATE_COMPLETE),
            }
        )
    for (name, version, source, status), n in sorted(counts.items()):
        if source != MetricScore.SOURCE_EXTERNAL or status != MetricScore.STATUS_OK:
            continue
        out.append(
            {
                "name": name,
                "version": version,
                "group": "external",
                "source": MetricScore.SOURCE_EXTERNAL,
                "higher_is_better": None,
                "range": [None, None],
                "description": "Imported from a file.",
                "total": n,
                "done": n,
                "pending": 0,
                "failed": 0,
                "not_applicable": 0,
                "failure_reasons": [],
                "configured": True,
                "not_configured_reason": "",
                "state": STATE_COMPLETE,
            }
        )
    return out


def _is_current(score_metric: str, score_version: str, source: str, versions: dict[str, str]) -> bool:
    return source == MetricScore.SOURCE_EXTERNAL or versions.get(score_metric) == score_version


def scores_for_videos(
    *, video_ids: Iterable[int], current_only: bool = True, include_details: bool = False
) -> dict[int, list[dict[str, Any]]]:
    """video id -> its scores (every requested id present, [] when none). With
    ``current_only``, computed scores at an old version (or of an unregistered metric) are
    left out; external scores are always in. Each score: metric, version, value, status,
    error, source, computed_at, higher_is_better, group (and details when asked)."""
    ids = list(video_ids)
    registry = all_metrics()
    versions = current_versions()
    out: dict[int, list[dict[str, Any]]] = {vid: [] for vid in ids}
    fields = ["video_id", "metric", "version", "value", "status", "error", "source", "computed_at"]
    if include_details:
        fields.append("details")
    for row in MetricScore.objects.filter(video_id__in=ids).order_by("video_id", "metric", "version").values(*fields):
        if current_only and not _is_current(row["metric"], row["version"], row["source"], versions):
            continue
        metric = registry.get(row["metric"])
        external = row["source"] == MetricScore.SOURCE_EXTERNAL
        row["higher_is_better"] = metric.higher_is_better if metric and not external else None
        row["group"] = metric.group if metric and not external else "external"
        out[row.pop("video_id")].append(row)
    return out


def scores_frame(*, project_id: int, current_only: bool = True) -> pd.DataFrame:
    """One row per stored ok score of the project's videos, computed and external alike:
    columns video_id, prompt_id (the Prompt pk), generator (its name), metric, version, value."""
    import pandas as pd

    versions = current_versions()
    rows = MetricScore.objects.filter(video__project_id=project_id, status=MetricScore.STATUS_OK).values_list(
        "video_id", "video__prompt_id", "video__generator__name", "metric", "version", "value", "source"
    )
    data = [
        row[:6]
        for row in rows.order_by("video_id", "metric", "version")
        if not current_only or _is_current(row[3], row[4], row[6], versions)
    ]
    frame = pd.DataFrame(data, columns=SCORES_FRAME_COLUMNS)
    return frame.astype({"video_id": "int64", "prompt_id": "int64", "value": "float64"})
