"""Real data in the judgments layout: FETV (Liu et al., NeurIPS 2023 D&B, arXiv 2311.01813).

FETV has absolute 1–5 ratings per video; as its README says, one rater's two ratings of the
same prompt become a pairwise judgment: "a" when the A video's rating is higher, "b" when
lower, "tie" when equal. Pairs are (prompt, generator X, generator Y) with X < Y by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

FETV_QUESTIONS: dict[str, str] = {
    "static_quality": "visual_appeal",
    "alignment": "text_match",
    "temporal_quality": "consistency",
}
FETV_METRICS = ("CLIPScore", "CLIPScore-ft", "BLIPScore", "UMTScore")


def _file(path: str | Path, name: str) -> Path:
    p = Path(path)
    return p / name if p.is_dir() else p


def fetv_judgments(path: str | Path, *, question_map: Mapping[str, str] = FETV_QUESTIONS) -> pd.DataFrame:
    """FETV human ratings → judgments DataFrame.

    ``path`` is the FETV folder or its ``human_ratings.jsonl``. ``question_map`` maps FETV
    criteria to rubric question keys. Columns: pair_id ("fetv-<idx>-<X>-vs-<Y>"), prompt_id
    (FETV idx), rater, generator_a, generator_b, question, answer; no left_is_a (the ratings
    were absolute, nothing was shown side by side). Ratings that are missing give no judgment.
    """
    raw = pd.read_json(_file(path, "human_ratings.jsonl"), lines=True, precise_float=True)
    criteria = list(question_map)
    long = raw.melt(id_vars=["rater", "model", "idx"], value_vars=criteria, var_name="criterion", value_name="score")
    long = long.dropna(subset=["score"])
    both = long.merge(long, on=["rater", "idx", "criterion"], suffixes=("_a", "_b"))
    both = both[both["model_a"] < both["model_b"]]
    answer = np.where(both["score_a"] > both["score_b"], "a", np.where(both["score_a"] < both["score_b"], "b", "tie"))
    out = pd.DataFrame({
        "pair_id": "fetv-" + both["idx"].astype(str) + "-" + both["model_a"] + "-vs-" + both["model_b"],
        "prompt_id": both["idx"].astype(int),
        "rater": both["rater"].astype(str),
        "generator_a": both["model_a"].astype(str),
        "generator_b": both["model_b"].astype(str),
        "question": both["criterion"].map(dict(question_map)),
        "answer": answer,
    })
    return out.sort_values(["question", "prompt_id", "generator_a", "generator_b", "rater"]).reset_index(drop=True)


def fetv_video_scores(path: str | Path, *, metrics: tuple[str, ...] = FETV_METRICS) -> pd.DataFrame:
    """FETV automatic scores, video form: generator, prompt_id, metric, value (all higher-is-better)."""
    raw = pd.read_json(_file(path, "auto_scores.jsonl"), lines=True, precise_float=True)
    long = raw.melt(id_vars=["model", "idx"], value_vars=list(metrics), var_name="metric", value_name="value")
    long = long.rename(columns={"model": "generator", "idx": "prompt_id"})
    return long[["generator", "prompt_id", "metric", "value"]]
