"""Optical flow backends. The backend is part of every flow metric's version.

- ``farneback`` (default): OpenCV's Farneback on grey frames; CPU, no weights.
- ``raft``: torchvision's RAFT, when ``settings.RAFT_WEIGHTS`` names a state-dict file
  (raft_large or raft_small; 20 refinement iterations, as EvalCrafter). Torch is imported only
  here, inside the functions, and the model is loaded once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from metrics.errors import BackendNotConfigured

#: Farneback parameters (pyramid scale, levels, window, iterations, poly_n, poly_sigma).
#: Five levels follow displacements of ~20 sampled pixels per pair; changing them needs a
#: new version of the flow metrics.
FARNEBACK = {"pyr_scale": 0.5, "levels": 5, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}
RAFT_ITERATIONS = 20

_raft: dict[str, Any] = {}
_raft_lock = threading.Lock()


def flow_backend_name() -> str:
    """``"raft"`` when RAFT weights are configured, else ``"farneback"`` (no imports)."""
    return "raft" if getattr(settings, "RAFT_WEIGHTS", "") else "farneback"


def ensure_flow_backend(device: str | None = None) -> None:
    """Fail early, with the setting named, when RAFT is configured but cannot be loaded."""
    if flow_backend_name() == "raft":
        _raft_model(device)


def compute_flows(frames: np.ndarray, pairs: Sequence[tuple[int, int]], *, device: str | None = None) -> np.ndarray:
    """Flow from ``frames[a]`` to ``frames[b]`` for each pair: (P, H, W, 2) float32, sampled px."""
    if not pairs:
        return np.zeros((0, *frames.shape[1:3], 2), dtype=np.float32)
    if flow_backend_name() == "raft":
        return _raft_flows(frames, pairs, device)
    import cv2

    grey = {i: cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for pair in pairs for i in pair}
    out = np.empty((len(pairs), *frames.shape[1:3], 2), dtype=np.float32)
    for p, (a, b) in enumerate(pairs):
        out[p] = cv2.calcOpticalFlowFarneback(grey[a], grey[b], None, flags=0, **FARNEBACK)
    return out


def _device(device: str | None) -> str:
    import torch

    wanted = device or getattr(settings, "METRICS_DEVICE", "") or ""
    return wanted or ("cuda" if torch.cuda.is_available() else "cpu")


def _raft_model(device: str | None) -> tuple[Any, str]:
    path = Path(getattr(settings, "RAFT_WEIGHTS", ""))
    dev = _device(device)
    key = f"{path}|{dev}"
    with _raft_lock:
        if key in _raft:
            return _raft[key], dev
        if not path.is_file():
            raise BackendNotConfigured(
                "flow",
                "RAFT_WEIGHTS",
                f"RAFT_WEIGHTS={str(path)!r} is not a readable file; flow metrics are not configured",
            )
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise BackendNotConfigured(
                "flow", "RAFT_WEIGHTS", f"RAFT_WEIGHTS={str(path)!r} cannot be read: {exc}"
            ) from exc
        for build in (raft_large, raft_small):
            model = build(weights=None, progress=False)
            try:
                model.load_state_dict(state)
                break
            except RuntimeError:
                continue
        else:
            raise BackendNotConfigured(
                "flow",
                "RAFT_WEIGHTS",
                f"RAFT_WEIGHTS={str(path)!r} is neither a raft_large nor a raft_small state dict",
            )
        model = model.eval().to(dev)
        _raft[key] = model
        return model, dev


def _raft_flows(frames: np.ndarray, pairs: Sequence[tuple[int, int]], device: str | None) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    model, dev = _raft_model(device)
    h, w = frames.shape[1:3]
    # RAFT needs sizes divisible by 8, and at least 128 px for its correlation pyramid
    h8, w8 = max(128, (h + 7) // 8 * 8), max(128, (w + 7) // 8 * 8)
    out = np.empty((len(pairs), h, w, 2), dtype=np.float32)
    with torch.inference_mode(), _raft_lock:
        for start in range(0, len(pairs), 8):
            chunk = pairs[start : start + 8]
            a = torch.from_numpy(np.stack([frames[i] for i, _ in chunk])).permute(0, 3, 1, 2).float()
            b = torch.from_numpy(np.stack([frames[j] for _, j in chunk])).permute(0, 3, 1, 2).float()
            a, b = (F.interpolate(x, size=(h8, w8), mode="bilinear", align_corners=False) for x in (a, b))
            a, b = (x.div(127.5).sub(1.0).to(dev) for x in (a, b))  # [-1, 1], as RAFT was trained
            flow = model(a, b, num_flow_updates=RAFT_ITERATIONS)[-1].float()
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow[:, 0] *= w / w8
            flow[:, 1] *= h / h8
            out[start : start + len(chunk)] = flow.permute(0, 2, 3, 1).cpu().numpy()
    return out
