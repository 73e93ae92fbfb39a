"""Optical-flow metrics. Flows are (P, H, W, 2) arrays of (dx, dy) in sampled pixels for P
frame pairs; ``scale`` is native pixels per sampled pixel along (x, y) and ``step`` the native
frames between the two frames of each pair, so values come out per native frame at native
resolution whatever the sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: EvalCrafter's motion-AC threshold on flow_score, in native pixels per frame.
MOTION_AC_THRESHOLD = 5.0
AMPLITUDE_TAG_KEYS = ("motion", "amplitude", "motion_amplitude")
_LARGE = {"fast", "large", "high", "big"}
_SLOW = {"slow", "small", "low"}


def _magnitudes(flow: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 4 or f.shape[-1] != 2 or f.shape[0] == 0:
        raise ValueError(f"flow must be (P, H, W, 2) with P >= 1, got {f.shape}")
    return np.hypot(f[..., 0] * float(scale[0]), f[..., 1] * float(scale[1]))


def flow_score(flow: np.ndarray, scale: Sequence[float], step: float) -> float:
    """Mean over pairs of the mean flow magnitude over all pixels, in native pixels per
    native frame: magnitudes rescaled by ``scale`` and divided by ``step``."""
    return float(_magnitudes(flow, scale).mean(axis=(1, 2)).mean() / max(float(step), 1e-9))


def dynamic_degree(flow: np.ndarray, scale: Sequence[float], native_size: Sequence[int]) -> float:
    """VBench's dynamic degree. Per pair: mean of the top 5 % flow magnitudes (native pixels
    per sampled pair, as VBench measures between its ~8 fps samples); the video is dynamic (1.0)
    if at least round(4 * N / 16) of the N pairs exceed 6 * min(H, W) / 256, else 0.0."""
    mags = _magnitudes(flow, scale).reshape(len(flow), -1)
    k = max(1, int(round(mags.shape[1] * 0.05)))
    top = np.partition(mags, mags.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
    threshold = 6.0 * min(int(native_size[0]), int(native_size[1])) / 256.0
    needed = max(1, int(round(4 * len(top) / 16)))
    return 1.0 if int(np.sum(top > threshold)) >= needed else 0.0


def amplitude_of(tags: Mapping[str, Any] | None) -> str | None:
    """The prompt's motion amplitude tag as "large" or "slow"; None when absent or unknown."""
    for key in AMPLITUDE_TAG_KEYS:
        value = str((tags or {}).get(key, "")).strip().lower()
        if value in _LARGE:
            return "large"
        if value in _SLOW:
            return "slow"
    return None


def motion_ac(flow_score_value: float, amplitude: str) -> float:
    """1.0 when the measured amplitude ("large" if flow_score > 5 px, else "slow") matches
    the prompt's, else 0.0."""
    measured = "large" if flow_score_value > MOTION_AC_THRESHOLD else "slow"
    return 1.0 if measured == amplitude else 0.0


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at x + flow(x) (bilinear); returns the warped image."""
    import cv2

    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def visibility_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of frame t that are visible in frame t+1: the target lies inside the frame,
    forward and backward flow agree, and the pixel is not on a motion boundary (the
    consistency tests of Sundaram et al. 2010, as used by Ruder et al. 2016)."""
    h, w = forward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = grid_x + forward[..., 0], grid_y + forward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    back = _warp(backward, forward)
    disagreement = np.sum((forward + back) ** 2, axis=-1)
    consistent = disagreement <= 0.01 * (np.sum(forward**2, -1) + np.sum(back**2, -1)) + 0.5
    du_y, du_x = np.gradient(forward[..., 0])
    dv_y, dv_x = np.gradient(forward[..., 1])
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * np.sum(forward**2, -1) + 0.002
    return inside & consistent & ~boundary


def warping_error(
    frames: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    flow: np.ndarray,
    flow_backward: np.ndarray,
) -> float:
    """Mean over pairs (t, t') of sum((warp(I_t') - I_t)^2 * visible) / sum(visible), pixels in
    [0, 1] averaged over RGB, where warp(I_t') samples I_t' along the forward flow and
    ``visible`` is :func:`visibility_mask`. A pair with no visible pixel at all (nothing could
    be tracked) counts with its unmasked error, so untrackable content never scores as perfect."""
    if not pairs:
        raise ValueError("needs at least one frame pair")
    errors = []
    for p, (a, b) in enumerate(pairs):
        src = np.asarray(frames[a], dtype=np.float32) / 255.0
        dst = np.asarray(frames[b], dtype=np.float32) / 255.0
        fwd = np.asarray(flow[p], dtype=np.float32)
        visible = visibility_mask(fwd, np.asarray(flow_backward[p], dtype=np.float32))
        diff = np.mean((_warp(dst, fwd) - src) ** 2, axis=-1)
        errors.append(float(diff[visible].mean() if visible.any() else diff.mean()))
    return float(np.mean(errors))
