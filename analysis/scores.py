"""Metric scores aligned to the encoded pairs.

Two input forms are accepted (see :mod:`analysis`):

* pair form — columns ``pair_id``, ``metric``, ``value_a``, ``value_b``: the metric of the pair's
  A and B video;
* video form — columns ``generator``, ``prompt_id``, ``metric``, ``value``: one row per video;
  the judgments then need a ``prompt_id`` column, and a pair's A video is
  (its prompt_id, generator_a). Ids are matched as strings.

Either may carry ``higher_is_better`` (bool, per metric; default True). Metrics where lower is
better are negated here, so downstream a positive Δ = value_a − value_b always means "the
metric prefers A". Missing values are NaN and are skipped per statistic, never imputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.alignment import metric_orders
from analysis.coding import EncodedJudgments

PAIR_COLUMNS = ("pair_id", "metric", "value_a", "value_b")
VIDEO_COLUMNS = ("generator", "prompt_id", "metric", "value")


@dataclass(frozen=True)
class PairScores:
    """``value_a[m][p]`` / ``value_b[m][p]``: metric ``m`` for pair index ``p`` of the encoding (NaN missing)."""

    metrics: list[str]
    value_a: dict[str, np.ndarray]
    value_b: dict[str, np.ndarray]
    higher_is_better: dict[str, bool]
    _orders: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    def orders(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Argsorts of Δm and |Δm| over all pairs, computed on first use and shared by all questions."""
        if metric not in self._orders:
            self._orders[metric] = metric_orders(self.value_a[metric], self.value_b[metric])
        return self._orders[metric]


def _direction(scores: pd.DataFrame, metrics: list[str]) -> dict[str, bool]:
    if "higher_is_better" not in scores.columns:
        return dict.fromkeys(metrics, True)
    first = scores.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    return {m: bool(first.get(m, True)) if pd.notna(first.get(m, True)) else True for m in metrics}


def align_scores(scores: pd.DataFrame | None, enc: EncodedJudgments) -> tuple[PairScores | None, str | None]:
    """Scores per encoded pair, or ``(None, reason)`` when there are none to use."""
    if scores is None or len(scores) == 0:
        return None, "no metric scores"
    cols = set(scores.columns)
    if set(PAIR_COLUMNS) <= cols:
        return _from_pairs(scores, enc), None
    if set(VIDEO_COLUMNS) <= cols:
        if enc.prompt_ids is None:
            return None, "scores are per video but the judgments have no prompt_id column to match them"
        return _from_videos(scores, enc), None
    raise ValueError(f"scores need columns {PAIR_COLUMNS} (pair form) or {VIDEO_COLUMNS} (video form)")


def _from_pairs(scores: pd.DataFrame, enc: EncodedJudgments) -> PairScores:
    metric_codes, metric_names = pd.factorize(scores["metric"], sort=False)
    metrics = [str(m) for m in metric_names]
    pair_index = pd.Index(enc.pair_ids).get_indexer(scores["pair_id"])
    va_all = pd.to_numeric(scores["value_a"], errors="coerce").to_numpy(dtype=float)
    vb_all = pd.to_numeric(scores["value_b"], errors="coerce").to_numpy(dtype=float)
    direction = _direction(scores.assign(metric=scores["metric"].astype(str)), metrics)
    value_a, value_b = {}, {}
    for i, name in enumerate(metrics):
        sel = (metric_codes == i) & (pair_index >= 0)
        va, vb = np.full(enc.n_pairs, np.nan), np.full(enc.n_pairs, np.nan)
        va[pair_index[sel]], vb[pair_index[sel]] = va_all[sel], vb_all[sel]
        sign = 1.0 if direction[name] else -1.0
        value_a[name], value_b[name] = sign * va, sign * vb
    return PairScores(metrics, value_a, value_b, direction)


def _from_videos(scores: pd.DataFrame, enc: EncodedJudgments) -> PairScores:
    s = scores.assign(metric=scores["metric"].astype(str), prompt_id=scores["prompt_id"].astype(str),
                      generator=scores["generator"].astype(str),
                      value=pd.to_numeric(scores["value"], errors="coerce"))
    metrics = list(dict.fromkeys(s["metric"]))
    direction = _direction(s, metrics)
    table = s.drop_duplicates(["prompt_id", "generator", "metric"], keep="last").pivot(
        index=["prompt_id", "generator"], columns="metric", values="value")
    names = np.asarray(enc.generators + [""], dtype=object)
    prompts = pd.Series(enc.prompt_ids).astype(str).to_numpy()
    value_a, value_b = {}, {}
    for gen, out in ((enc.pair_generator_a, value_a), (enc.pair_generator_b, value_b)):
        keys = pd.MultiIndex.from_arrays([prompts, names[gen]])
        rows = table.index.get_indexer(keys)
        for name in metrics:
            col = table[name].to_numpy(dtype=float)
            vals = np.where(rows >= 0, col[np.maximum(rows, 0)], np.nan)
            out[name] = vals if direction[name] else -vals
    return PairScores(metrics, value_a, value_b, direction)


def pair_scores_from_videos(pairs: pd.DataFrame, video_scores: pd.DataFrame) -> pd.DataFrame:
    """Video-form scores → pair form for ``pairs`` (columns pair_id, prompt_id, generator_a, generator_b).

    Pairs whose videos lack a score get NaN. Ids are matched as strings.
    """
    p = pairs.drop_duplicates("pair_id")[["pair_id", "prompt_id", "generator_a", "generator_b"]].copy()
    p["_prompt"] = p["prompt_id"].astype(str)
    v = video_scores.assign(_prompt=video_scores["prompt_id"].astype(str),
                            generator=video_scores["generator"].astype(str))
    v = v[["_prompt", "generator", "metric", "value"]]
    metrics = pd.DataFrame({"metric": pd.unique(v["metric"])})
    grid = p.merge(metrics, how="cross")
    grid["generator_a"] = grid["generator_a"].astype(str)
    grid["generator_b"] = grid["generator_b"].astype(str)
    out = grid.merge(v.rename(columns={"generator": "generator_a", "value": "value_a"}),
                     on=["_prompt", "generator_a", "metric"], how="left")
    out = out.merge(v.rename(columns={"generator": "generator_b", "value": "value_b"}),
                    on=["_prompt", "generator_b", "metric"], how="left")
    return out[["pair_id", "metric", "value_a", "value_b"]]
