"""Pixel-level temporal metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def temporal_flickering(frames: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    """VBench's temporal flickering: mean over pairs of consecutive frames of
    (255 - mean |I_t - I_{t+1}|) / 255, on uint8 RGB frames. 1 for a perfectly static clip."""
    if not pairs:
        raise ValueError("needs at least one pair of consecutive frames")
    f = np.asarray(frames)
    scores = [(255.0 - float(np.mean(np.abs(f[a].astype(np.int16) - f[b].astype(np.int16))))) / 255.0 for a, b in pairs]
    return float(np.mean(scores))
