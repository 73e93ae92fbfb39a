"""Synthetic videos with known answers, written with ffmpeg through a pipe."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def texture(height: int, width: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """Smoothed colour noise: texture everywhere, so flow is defined at every pixel."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), sigma)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (noise * 255).astype(np.uint8)


def pan_frames(width: int, height: int, k: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """A camera panning k px per frame over a texture: every pixel moves by exactly k px."""
    big = texture(height, width + k * n + 8, seed=seed)
    return [big[:, k * i : k * i + width] for i in range(n)]


def encode(path: Path, frames: Sequence[np.ndarray], fps: float, crf: int = 16) -> Path:
    """numpy RGB frames -> H.264 MP4 (yuv420p), through a pipe."""
    height, width = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
        "-crf", str(crf), "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=np.stack(frames).tobytes(), check=True)
    return path


def values(video) -> dict[str, float | None]:
    from metrics.models import MetricScore

    return {s.metric: s.value for s in MetricScore.objects.filter(video=video)}


def blend_frames(n: int = 48, width: int = 256, height: int = 160) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A smooth clip that cross-fades from a reddish scene A to a bluish scene B (and A, B)."""
    a = texture(height, width, seed=1).astype(np.float32)
    a[..., 0] = np.clip(a[..., 0] + 80, 0, 255)
    a[..., 2] *= 0.3
    b = texture(height, width, seed=2, sigma=8).astype(np.float32)
    b[..., 2] = np.clip(b[..., 2] + 80, 0, 255)
    b[..., 0] *= 0.3
    frames = [((1 - t) * a + t * b).astype(np.uint8) for t in np.linspace(0, 1, n)]
    return frames, a.astype(np.uint8), b.astype(np.uint8)


def run_engine(path: Path, names: Sequence[str], *, text: str = "a prompt", tags: dict | None = None):
    """Score one file with the named metrics (no database): {metric: ScoreResult}, result."""
    from metrics.engine import Engine
    from metrics.inputs import VideoJob
    from metrics.registry import get_metric

    job = VideoJob(key=1, path=path, metrics=[get_metric(n) for n in names], text=text, tags=tags or {})
    (result,) = list(Engine(workers=2).run([job]))
    return {s.metric: s for s in result.scores}, result
