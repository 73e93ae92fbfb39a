"""CLIP-embedding metrics (definitions in /work/shared/METRICS.md).

Inputs are L2-normalised embeddings (any float dtype; computed here in float64), so a dot
product is the cosine similarity. Our absolute values are not EvalCrafter's: EvalCrafter feeds
CLIP raw 0-255 pixels without CLIP's normalisation, we use the model's own preprocessing.
"""

from __future__ import annotations

import numpy as np


def _rows(embeddings: np.ndarray, minimum: int) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < minimum:
        raise ValueError(f"needs at least {minimum} frame embeddings, got shape {e.shape}")
    return e


def clip_score(image_embeddings: np.ndarray, text_embedding: np.ndarray) -> float:
    """Mean over frames of cos(image_i, text). Range [-1, 1]; typical 0.2-0.35 with real weights."""
    e = _rows(image_embeddings, 1)
    t = np.asarray(text_embedding, dtype=np.float64).reshape(-1)
    return float(np.mean(e @ t))


def clip_temp(image_embeddings: np.ndarray) -> float:
    """Mean over consecutive sampled frames of cos(f_i, f_{i+1})."""
    e = _rows(image_embeddings, 2)
    return float(np.mean(np.sum(e[:-1] * e[1:], axis=1)))


def first_frame_consistency(image_embeddings: np.ndarray) -> float:
    """Mean over i >= 1 of cos(f_i, f_0)."""
    e = _rows(image_embeddings, 2)
    return float(np.mean(e[1:] @ e[0]))


def background_consistency(image_embeddings: np.ndarray) -> float:
    """VBench's consistency: mean over i >= 1 of [max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))] / 2."""
    e = _rows(image_embeddings, 2)
    previous = np.maximum(0.0, np.sum(e[:-1] * e[1:], axis=1))
    first = np.maximum(0.0, e[1:] @ e[0])
    return float(np.mean((previous + first) / 2.0))
