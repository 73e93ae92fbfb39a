"""A project's analysis (:func:`analysis.analyze` and the dashboard's extras), cached once for all readers.

One cache entry per project and :class:`AnalysisParams` serves the REST API
(``GET /api/v1/projects/{id}/analysis/``) and the dashboard page. Entries are written only by
:func:`annotation.services.dashboard.project_analysis_refresh` (the refresh task, or the API on a
true cold miss) and read here by :func:`project_analysis`, stale-while-revalidate:

- Whether an entry is current is decided without touching the judgments: every change of the
  project's inputs (a submit, an import, an exclusion, a gold pair, new metric scores) calls
  ``dashboard_invalidate``, which after commit writes a new random *change token* for the
  project into the cache. An entry records the token it was computed from (read before the
  judgments were read), so "stale" is one cache read and a string comparison, at any number of
  judgments. (Counting the judgments instead, as ``judgments_stamp`` does, scans the project's
  index entries on every request: see docs/benchmarks.md, "Dashboard".) A rubric change is
  caught by comparing question keys, which the readers load anyway.
- A stale entry is still served, marked ``stale``, while a refresh is requested (debounced: at
  most one task per project and parameters per ``DASHBOARD_REFRESH_DEBOUNCE_SECONDS``).
- A change that bypassed the services (the admin, SQL) is caught by age: an entry not checked for
  ``DASHBOARD_RECHECK_SECONDS`` asks the task to compare a database fingerprint and recompute
  only if it differs.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone

from annotation.models import Judgment, Pair, Project
from annotation.selectors.dashboard import excluded_raters_info, rater_context, scatter_points
from annotation.selectors.labels import judgments_frame, judgments_stamp, question_keys

logger = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP_ROUNDS = 1000
#: Entries of non-default parameters (filters, other bootstrap rounds) expire; the default one does not.
VARIANT_CACHE_SECONDS = 24 * 3600
ENTRY_SCHEMA = 1
_PREFIX = "vj:analysis"


@dataclass(frozen=True)
class AnalysisParams:
    """What an analysis is computed with. The default is what the refresh task keeps warm."""

    bootstrap_rounds: int = DEFAULT_BOOTSTRAP_ROUNDS
    dawid_skene: bool = False
    generators: tuple[str, ...] = field(default=())
    raters: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        # Normalised so that equal requests share one cache entry.
        object.__setattr__(self, "generators", tuple(sorted({str(g) for g in self.generators})))
        object.__setattr__(self, "raters", tuple(sorted({int(r) for r in self.raters})))

    @property
    def is_default(self) -> bool:
        return self == AnalysisParams()

    @property
    def digest(self) -> str:
        raw = f"{self.bootstrap_rounds}|{int(self.dawid_skene)}|{list(self.generators)}|{list(self.raters)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (a task argument)."""
        return {"bootstrap_rounds": self.bootstrap_rounds, "dawid_skene": self.dawid_skene,
                "generators": list(self.generators), "raters": list(self.raters)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AnalysisParams:
        data = data or {}
        return cls(bootstrap_rounds=int(data.get("bootstrap_rounds", DEFAULT_BOOTSTRAP_ROUNDS)),
                   dawid_skene=bool(data.get("dawid_skene", False)),
                   generators=tuple(data.get("generators", ())), raters=tuple(data.get("raters", ())))


def analysis_entry_key(*, project: Project, params: AnalysisParams) -> str:
    # The project's creation time is in the key so that a database recreated under the same
    # cache (ids reused) never finds another project's result.
    created = int(project.created_at.timestamp() * 1_000_000)
    return f"{_PREFIX}:{project.pk}:entry:{created}:{params.digest}"


def analysis_token_key(*, project_id: int) -> str:
    return f"{_PREFIX}:{project_id}:token"


def analysis_lock_key(*, project_id: int, params: AnalysisParams) -> str:
    return f"{_PREFIX}:{project_id}:refresh-lock:{params.digest}"


def analysis_change_token(*, project_id: int) -> str:
    """The project's current change token (one cache read).

    When the cache has lost it (evicted, flushed), a new one is made, so every entry computed
    before reads as stale: losing the token can cost a refresh, never serve a wrong "fresh".
    """
    key = analysis_token_key(project_id=project_id)
    token = cache.get(key)
    if token is None:
        cache.add(key, uuid.uuid4().hex, None)
        token = cache.get(key)
    return str(token)


def analysis_entry(*, project: Project, params: AnalysisParams) -> dict[str, Any] | None:
    """The stored entry, or None (also for an entry of an older layout)."""
    entry = cache.get(analysis_entry_key(project=project, params=params))
    if not isinstance(entry, dict) or entry.get("schema") != ENTRY_SCHEMA:
        return None
    return entry


def analysis_fingerprint(*, project_id: int) -> str:
    """What the inputs look like in the database: judgments (count, top id, last update, excluded
    raters, rubric), gold pairs and metric scores. Costs scans of the project's judgment index
    entries (see docs/benchmarks.md): for the refresh task only, never a page request."""
    from metrics.models import MetricScore  # noqa: PLC0415 - metrics app owns scores

    gold = Pair.objects.filter(project_id=project_id, is_gold=True).aggregate(n=Count("id"), s=Sum("id"))
    scores = MetricScore.objects.filter(video__project_id=project_id).aggregate(
        n=Count("id"), top=Max("id"), last=Max("computed_at")
    )
    last = scores["last"].isoformat() if scores["last"] else ""
    raw = (f"{judgments_stamp(project_id=project_id)}|gold {gold['n']}.{gold['s']}"
           f"|scores {scores['n']}.{scores['top']}.{last}")
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


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


def _count_judgments(frame: pd.DataFrame) -> int:
    """Distinct (pair, rater) in the long frame: the judgments the analysis covers."""
    if frame.empty:
        return 0
    keys = frame["pair_id"].to_numpy(dtype="int64") * (1 << 32) + frame["rater"].to_numpy(dtype="int64")
    return int(len(pd.unique(keys)))


def analysis_compute(*, project_id: int, params: AnalysisParams) -> dict[str, Any]:
    """Compute everything an entry holds (no cache): seconds to tens of seconds at 1M judgments.

    Returns ``analysis`` (analyze's dict), ``scores`` ("included" or why not), ``raters`` (names,
    median times), ``scatter`` (the dashboard's metric-vs-human points), ``n_judgments``,
    ``questions``, ``excluded_raters`` ([{id, name}]: left out, as everywhere) and
    ``gold_pairs`` (how many of the project's pairs are gold).
    """
    from analysis import analyze  # noqa: PLC0415 - keep scipy out of module import time

    started = time.perf_counter()
    questions = question_keys(project_id=project_id)
    # A project without judgments needs no context columns; besides, judgments_frame cannot
    # build them from zero rows (its nullable left_is_a column raises a TypeError).
    has_judgments = Judgment.objects.filter(project_id=project_id).exists()
    frame = judgments_frame(project_id=project_id, questions=questions, generators=list(params.generators),
                            with_context=has_judgments)
    if params.raters:
        frame = frame[frame["rater"].isin(list(params.raters))].reset_index(drop=True)
    scores, reason = project_scores_frame(project_id=project_id)
    if reason:
        logger.debug("analysis of project %s without scores: %s", project_id, reason)
    result = analyze(frame, scores if not frame.empty else None, questions=questions,
                     bootstrap_rounds=params.bootstrap_rounds, dawid_skene=params.dawid_skene, seed=0)
    rater_ids = sorted(int(r) for r in pd.unique(frame["rater"])) if len(frame) else []
    empty_scores = pd.DataFrame(columns=["generator", "prompt_id", "metric", "value"])
    return {
        "analysis": result,
        "scores": reason or "included",
        "raters": rater_context(project_id=project_id, rater_ids=rater_ids),
        "scatter": scatter_points(frame, scores if scores is not None else empty_scores),
        "n_judgments": _count_judgments(frame),
        "questions": questions,
        "excluded_raters": excluded_raters_info(project_id=project_id),
        "gold_pairs": Pair.objects.filter(project_id=project_id, is_gold=True).count(),
        "compute_seconds": round(time.perf_counter() - started, 3),
    }


@dataclass(frozen=True)
class AnalysisRead:
    """What a reader gets. ``entry`` is None only while a first result is being computed."""

    state: Literal["fresh", "stale", "computing"]
    entry: dict[str, Any] | None
    #: A refresh is queued or running (requested now or within the debounce window).
    refreshing: bool
    #: False when this request computed the entry itself (the API on a true cold miss).
    cached: bool = True

    @property
    def stale(self) -> bool:
        return self.state == "stale"


def _is_stale(entry: dict[str, Any], *, token: str, questions: Sequence[str]) -> bool:
    return entry["token"] != token or list(entry["questions"]) != list(questions)


def _is_aged(entry: dict[str, Any], now: datetime) -> bool:
    checked = datetime.fromisoformat(entry["checked_at"])
    return (now - checked).total_seconds() > settings.DASHBOARD_RECHECK_SECONDS


def project_analysis(
    *,
    project: Project,
    params: AnalysisParams | None = None,
    questions: Sequence[str] | None = None,
    on_miss: Literal["refresh", "compute"] = "refresh",
) -> AnalysisRead:
    """The project's cached analysis for ``params`` (default: the one the refresh task keeps warm).

    Never reads the judgments while an entry exists: one cache read for the change token, one
    for the entry, and the rubric's keys (pass ``questions`` when the caller has them). A stale
    or aged entry is returned as it is and a refresh is requested (a cache ``add``, and at most
    one task per debounce window). On a true cold miss (no entry at all), ``on_miss="refresh"``
    requests the refresh and answers ``computing`` (the page shows that and polls; with tasks
    run inline, as in tests, the entry is there at once), while ``on_miss="compute"`` computes
    in this request and stores the entry (the API, whose clients expect a result).
    """
    from annotation.services.dashboard import analysis_refresh_request, project_analysis_refresh  # noqa: PLC0415

    params = params or AnalysisParams()
    project_id = project.pk
    token = analysis_change_token(project_id=project_id)
    keys = list(questions) if questions is not None else question_keys(project_id=project_id)
    entry = analysis_entry(project=project, params=params)
    if entry is None:
        if on_miss == "compute":
            entry = project_analysis_refresh(project=project, params=params)
            return AnalysisRead(state="fresh" if not _is_stale(entry, token=token, questions=keys) else "stale",
                                entry=entry, refreshing=False, cached=False)
        refreshing = analysis_refresh_request(project_id=project_id, params=params)
        entry = analysis_entry(project=project, params=params)  # there already when tasks run inline
        if entry is None:
            return AnalysisRead(state="computing", entry=None, refreshing=refreshing)
    stale = _is_stale(entry, token=token, questions=keys)
    refreshing = False
    if stale or _is_aged(entry, timezone.now()):
        refreshing = analysis_refresh_request(project_id=project_id, params=params)
    return AnalysisRead(state="stale" if stale else "fresh", entry=entry, refreshing=refreshing)
