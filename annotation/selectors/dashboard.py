"""The manager dashboard's analysis: inputs from the database, :func:`analysis.analyze`, cached.

The result is cached under the project and :func:`judgments_stamp`, so any change of judgments,
excluded raters or rubric makes a new key; a page computes synchronously on a miss, and
:mod:`annotation.services.dashboard` refreshes the cache in the background after changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q

from annotation.models import Judgment
from annotation.selectors.labels import judgments_frame, judgments_stamp, question_keys

CACHE_TIMEOUT = 24 * 3600
SCATTER_MAX_POINTS = 2000
_ANSWER_SIGN = {"a": 1.0, "tie": 0.0, "b": -1.0}


def _scores_stamp(*, project_id: int) -> str:
    """Changes whenever a metric score of the project is stored or recomputed."""
    from django.db.models import Count, Max  # noqa: PLC0415

    from metrics.models import MetricScore  # noqa: PLC0415

    agg = MetricScore.objects.filter(video__project_id=project_id).aggregate(
        n=Count("id"), top=Max("id"), last=Max("computed_at")
    )
    return f"{agg['n']}.{agg['top']}.{agg['last'].timestamp() if agg['last'] else ''}"


def dashboard_stamp(*, project_id: int) -> str:
    """The cache stamp: judgments (and exclusions, rubric) plus metric scores."""
    return f"{judgments_stamp(project_id=project_id)}-{_scores_stamp(project_id=project_id)}"


def _cache_key(*, project_id: int, stamp: str, params: str) -> str:
    digest = hashlib.sha256(params.encode()).hexdigest()[:16]
    return f"vj:dashboard:{project_id}:{stamp}:{digest}"


def _params(bootstrap_rounds: int, generators: Sequence[str], raters: Sequence[int]) -> str:
    return f"{bootstrap_rounds}|{sorted(generators)}|{sorted(int(r) for r in raters)}"


def _video_scores(project_id: int) -> pd.DataFrame:
    """analyze's video form (generator, prompt_id, metric, value) from the stored scores."""
    try:
        from metrics.selectors import scores_frame  # noqa: PLC0415
    except ImportError:  # metrics app absent: no alignment
        return pd.DataFrame(columns=["generator", "prompt_id", "metric", "value"])
    frame = scores_frame(project_id=project_id)
    if frame.empty:
        return pd.DataFrame(columns=["generator", "prompt_id", "metric", "value"])
    # One value per (generator, prompt, metric): the mean over videos/versions still current.
    return (
        frame.groupby(["generator", "prompt_id", "metric"], as_index=False, observed=True)["value"]
        .mean()
        .astype({"prompt_id": "int64", "value": "float64"})
    )


def scatter_points(
    judgments: pd.DataFrame, scores: pd.DataFrame, *, max_points: int = SCATTER_MAX_POINTS, seed: int = 0
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per question and metric: (Δmetric = A − B, human preference for A in [−1, 1]) per pair.

    Human preference is the mean over the pair's raters of a = +1, tie = 0, b = −1. At most
    ``max_points`` pairs are kept per (question, metric), a seeded uniform sample.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    if judgments.empty or scores.empty or "prompt_id" not in judgments.columns:
        return result
    frame = pd.DataFrame(
        {
            "pair_id": judgments["pair_id"].to_numpy(),
            "question": judgments["question"].astype(str).to_numpy(),
            "generator_a": judgments["generator_a"].astype(str).to_numpy(),
            "generator_b": judgments["generator_b"].astype(str).to_numpy(),
            "prompt_id": judgments["prompt_id"].to_numpy(),
            "sign": judgments["answer"].astype(str).map(_ANSWER_SIGN).to_numpy(dtype=float),
        }
    ).dropna(subset=["sign"])
    pairs = frame.groupby(["question", "pair_id", "generator_a", "generator_b", "prompt_id"], as_index=False).agg(
        preference=("sign", "mean"), n=("sign", "size")
    )
    lookup = scores.assign(generator=scores["generator"].astype(str))
    rng = np.random.default_rng(seed)
    for metric, mscores in lookup.groupby("metric", observed=True):
        values = mscores.set_index(["generator", "prompt_id"])["value"]
        values = values[~values.index.duplicated()]
        merged = pairs.join(values.rename("value_a"), on=["generator_a", "prompt_id"]).join(
            values.rename("value_b"), on=["generator_b", "prompt_id"]
        )
        merged = merged.dropna(subset=["value_a", "value_b"])
        for question, qframe in merged.groupby("question"):
            total = len(qframe)
            if total > max_points:
                qframe = qframe.iloc[np.sort(rng.choice(total, max_points, replace=False))]
            delta = (qframe["value_a"] - qframe["value_b"]).to_numpy(dtype=float)
            keep = np.isfinite(delta)
            result.setdefault(str(question), {})[str(metric)] = {
                "n_total": int(total),
                "n_shown": int(keep.sum()),
                "delta": [float(v) for v in delta[keep]],
                "preference": [float(v) for v in qframe["preference"].to_numpy(dtype=float)[keep]],
                "raters": [int(v) for v in qframe["n"].to_numpy()[keep]],
            }
    return result


def _rater_context(project_id: int, rater_ids: list[int]) -> dict[str, dict[str, Any]]:
    """Per rater: display name and median judgment time (ms) where recorded."""
    users = dict(get_user_model().objects.filter(pk__in=rater_ids).values_list("pk", "username"))
    durations: dict[int, list[int]] = {}
    rows = (
        Judgment.objects.filter(project_id=project_id, rater_id__in=rater_ids)
        .filter(~Q(duration_ms=None))
        .values_list("rater_id", "duration_ms")
    )
    for rater_id, duration in rows.iterator():
        durations.setdefault(rater_id, []).append(duration)
    return {
        str(rid): {
            "name": users.get(rid, f"rater {rid}"),
            "median_duration_ms": float(np.median(durations[rid])) if durations.get(rid) else None,
            "median_duration_reason": None if durations.get(rid) else "no durations recorded (imported judgments)",
        }
        for rid in rater_ids
    }


def project_analysis_compute(
    *,
    project_id: int,
    bootstrap_rounds: int = 1000,
    generators: Sequence[str] = (),
    raters: Sequence[int] = (),
) -> dict[str, Any]:
    """Compute the dashboard's data (no cache): analyze's dict plus ``raters`` and ``scatter``."""
    from analysis import analyze  # noqa: PLC0415 - keep scipy out of module import time

    questions = question_keys(project_id=project_id)
    judgments = judgments_frame(
        project_id=project_id, questions=questions, generators=list(generators), with_context=True
    )
    if raters:
        judgments = judgments[judgments["rater"].isin([int(r) for r in raters])].reset_index(drop=True)
    scores = _video_scores(project_id)
    result = analyze(
        judgments,
        scores if not scores.empty else None,
        questions=questions,
        bootstrap_rounds=bootstrap_rounds,
        seed=0,
    )
    rater_ids = sorted(int(r) for r in pd.unique(judgments["rater"])) if len(judgments) else []
    result["raters"] = _rater_context(project_id, rater_ids)
    result["scatter"] = scatter_points(judgments, scores)
    result["filters"] = {"generators": list(generators), "raters": [int(r) for r in raters]}
    return result


def project_analysis(
    *,
    project_id: int,
    bootstrap_rounds: int = 1000,
    generators: Sequence[str] = (),
    raters: Sequence[int] = (),
    refresh: bool = False,
) -> dict[str, Any]:
    """The dashboard's analysis for ``project_id``, from the cache when the judgments are unchanged."""
    stamp = dashboard_stamp(project_id=project_id)
    key = _cache_key(project_id=project_id, stamp=stamp, params=_params(bootstrap_rounds, generators, raters))
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    result = project_analysis_compute(
        project_id=project_id, bootstrap_rounds=bootstrap_rounds, generators=generators, raters=raters
    )
    result["cache_stamp"] = stamp
    cache.set(key, result, CACHE_TIMEOUT)
    return result
