"""The manager dashboard's parts of a project's analysis, and the page's view of a cached entry.

The analysis itself is computed and cached once for the API and the page by
:mod:`annotation.selectors.analysis`; this module supplies what only the dashboard shows (the
metric-vs-human scatter, rater names and times, who is excluded) and turns an entry into the
page's data. Nothing here reads the judgments on a page request.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from django.contrib.auth import get_user_model
from django.db.models import Q

from annotation.exports.arrow_source import query_batches, select_columns
from annotation.models import Judgment, Membership

SCATTER_MAX_POINTS = 2000
_ANSWER_SIGN = {"a": 1.0, "tie": 0.0, "b": -1.0}


def _codes(values: pd.Series, categories: pd.Index) -> np.ndarray:
    """Integer codes of ``values`` in ``categories`` (-1 when absent), without a Python object per row."""
    column = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    own = pd.Index([str(c) for c in column.cat.categories])
    lookup = np.append(categories.get_indexer(own), -1)  # code -1 (missing) picks the trailing -1
    return lookup[column.cat.codes.to_numpy()]


def scatter_points(
    judgments: pd.DataFrame, scores: pd.DataFrame, *, max_points: int = SCATTER_MAX_POINTS, seed: int = 0
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per question and metric: (Δmetric = A − B, human preference for A in [−1, 1]) per pair.

    Human preference is the mean over the pair's raters of a = +1, tie = 0, b = −1. At most
    ``max_points`` pairs are kept per (question, metric), a seeded uniform sample. Works on
    integer codes (a million judgments × 6 questions in about a second and a few hundred MB).
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    if judgments.empty or scores.empty or "prompt_id" not in judgments.columns:
        return result
    generators = pd.Index(sorted({str(g) for g in judgments["generator_a"].unique()}
                                 | {str(g) for g in judgments["generator_b"].unique()}))
    answers = judgments["answer"].astype("category")
    sign_of = np.append([_ANSWER_SIGN.get(str(c).lower(), np.nan) for c in answers.cat.categories], np.nan)
    question = judgments["question"].astype("category")
    questions = [str(q) for q in question.cat.categories]
    frame = pd.DataFrame({
        "question": question.cat.codes.to_numpy(),
        "pair_id": judgments["pair_id"].to_numpy(),
        "sign": sign_of[answers.cat.codes.to_numpy()],
        "generator_a": _codes(judgments["generator_a"], generators),
        "generator_b": _codes(judgments["generator_b"], generators),
        "prompt_id": judgments["prompt_id"].to_numpy(dtype=np.int64),
    })
    frame = frame[~np.isnan(frame["sign"].to_numpy()) & (frame["question"].to_numpy() >= 0)]
    pairs = frame.groupby(["question", "pair_id"], sort=True).agg(
        preference=("sign", "mean"), n=("sign", "size"), generator_a=("generator_a", "first"),
        generator_b=("generator_b", "first"), prompt_id=("prompt_id", "first"),
    ).reset_index()
    del frame
    q_codes = pairs["question"].to_numpy()
    # (generator, prompt) -> one integer key, to look a video's score up without string joins.
    span = int(max(pairs["prompt_id"].max(), scores["prompt_id"].max())) + 1
    key_a = pairs["generator_a"].to_numpy(dtype=np.int64) * span + pairs["prompt_id"].to_numpy()
    key_b = pairs["generator_b"].to_numpy(dtype=np.int64) * span + pairs["prompt_id"].to_numpy()
    score_gen = generators.get_indexer([str(g) for g in scores["generator"]])
    known = score_gen >= 0
    score_keys = score_gen[known].astype(np.int64) * span + scores["prompt_id"].to_numpy(dtype=np.int64)[known]
    score_frame = pd.DataFrame({"key": score_keys, "metric": scores["metric"].astype(str).to_numpy()[known],
                                "value": scores["value"].to_numpy(dtype=float)[known]})
    rng = np.random.default_rng(seed)
    for metric, mscores in score_frame.groupby("metric", sort=True):
        values = mscores.drop_duplicates("key").set_index("key")["value"]
        value_a = values.reindex(key_a).to_numpy()
        value_b = values.reindex(key_b).to_numpy()
        scored = ~np.isnan(value_a) & ~np.isnan(value_b)
        for code, name in enumerate(questions):
            rows = np.flatnonzero(scored & (q_codes == code))
            total = rows.size
            if not total:
                continue
            if total > max_points:
                rows = rows[np.sort(rng.choice(total, max_points, replace=False))]
            delta = value_a[rows] - value_b[rows]
            keep = np.isfinite(delta)
            result.setdefault(name, {})[str(metric)] = {
                "n_total": int(total),
                "n_shown": int(keep.sum()),
                "delta": [float(v) for v in delta[keep]],
                "preference": [float(v) for v in pairs["preference"].to_numpy()[rows][keep]],
                "raters": [int(v) for v in pairs["n"].to_numpy()[rows][keep]],
            }
    return result


def rater_context(*, project_id: int, rater_ids: list[int]) -> dict[str, dict[str, Any]]:
    """Per rater: display name and median judgment time (ms) where recorded.

    Two queries; the durations come as Arrow batches (no Python object per judgment)."""
    if not rater_ids:
        return {}
    users = dict(get_user_model().objects.filter(pk__in=rater_ids).values_list("pk", "username"))
    qs = select_columns(
        Judgment.objects.filter(project_id=project_id, rater_id__in=rater_ids).filter(~Q(duration_ms=None)).order_by(),
        {"rater": "rater_id", "duration": "duration_ms"},
    )
    schema = pa.schema([pa.field("rater", pa.int64()), pa.field("duration", pa.int64())])
    batches = list(query_batches(qs, schema))
    medians: dict[int, float] = {}
    if batches:
        table = pa.Table.from_batches(batches, schema=schema)
        durations = pd.DataFrame({"rater": table.column("rater").to_numpy(), "duration": table.column("duration")
                                  .to_numpy().astype(float)})
        medians = {int(r): float(m) for r, m in durations.groupby("rater")["duration"].median().items()}
    return {
        str(rid): {
            "name": users.get(rid, f"rater {rid}"),
            "median_duration_ms": medians.get(rid),
            "median_duration_reason": None if rid in medians else "no durations recorded (imported judgments)",
        }
        for rid in rater_ids
    }


def excluded_raters_info(*, project_id: int) -> list[dict[str, Any]]:
    """The project's excluded raters ([{id, name}], by name): their judgments are kept but left
    out of the analysis, labels and exports (one query)."""
    rows = (
        Membership.objects.filter(project_id=project_id, excluded=True)
        .order_by("user__username")
        .values_list("user_id", "user__username")
    )
    return [{"id": int(uid), "name": name} for uid, name in rows]


def dashboard_page_data(*, entry: dict[str, Any], params_filters: dict[str, Any]) -> dict[str, Any]:
    """The page's ``dashboard-data`` JSON: analyze's dict with ``raters``, ``scatter`` and ``filters``."""
    return {**entry["analysis"], "raters": entry["raters"], "scatter": entry["scatter"], "filters": params_filters}
