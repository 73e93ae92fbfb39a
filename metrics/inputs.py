"""Inputs made on the CPU from one video's decoded frames, each at most once per video.

A metric names its inputs (``Metric.inputs``); :class:`InputContext` computes them lazily and
caches them, so flow_score, dynamic_degree, motion_ac and warping_error share one forward flow.
Inputs made by a batched model stage (``clip_image``, ``clip_text``) are filled in by the
engine once the batch has run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metrics.errors import MetricInputError
from metrics.flow import compute_flows
from metrics.registry import FrameSpec, Metric
from metrics.sampling import SpecFrames, VideoSample


@dataclass
class VideoJob:
    """One video to score: where its file is, what it was prompted with, which metrics."""

    key: Any
    path: Path
    metrics: list[Metric]
    text: str = ""
    tags: dict[str, Any] = field(default_factory=dict)
    native_size: tuple[int, int] | None = None


def _spec(ctx: InputContext, spec: FrameSpec) -> SpecFrames:
    return ctx.sample.specs[spec.key]


def _pairs_or_fail(ctx: InputContext, spec: FrameSpec) -> list[tuple[int, int]]:
    pairs = _spec(ctx, spec).pairs
    if not pairs:
        raise MetricInputError(f"needs at least 2 frames; the video has {ctx.sample.info.frame_count}")
    return pairs


def _flow(ctx: InputContext, spec: FrameSpec, backward: bool) -> Any:
    frames = _spec(ctx, spec)
    pairs = _pairs_or_fail(ctx, spec)
    if backward:
        pairs = [(b, a) for a, b in pairs]
    return compute_flows(frames.frames, pairs, device=ctx.device)


CPU_INPUTS: dict[str, Callable[[InputContext, FrameSpec], Any]] = {
    "frames": lambda ctx, spec: _spec(ctx, spec).frames,
    "pairs": _pairs_or_fail,
    "sampling": _spec,
    "text": lambda ctx, spec: ctx.job.text,
    "tags": lambda ctx, spec: ctx.job.tags or {},
    "flow": lambda ctx, spec: _flow(ctx, spec, backward=False),
    "flow_backward": lambda ctx, spec: _flow(ctx, spec, backward=True),
}


class InputContext:
    def __init__(self, job: VideoJob, sample: VideoSample, device: str | None = None) -> None:
        self.job = job
        self.sample = sample
        self.device = device
        self.model_outputs: dict[str, Any] = {}
        self._cache: dict[tuple[str, str], Any] = {}
        self.sampling = {key: frames.describe() for key, frames in sample.specs.items()}

    def value(self, name: str, spec: FrameSpec) -> Any:
        if name in self.model_outputs:
            return self.model_outputs[name]
        key = (name, spec.key)
        if key not in self._cache:
            try:
                make = CPU_INPUTS[name]
            except KeyError:
                raise MetricInputError(f"input {name!r} is not available before its model stage") from None
            self._cache[key] = make(self, spec)
        return self._cache[key]

    def release(self, keep: set[str]) -> None:
        """Free what no remaining metric reads (frames, flows) once the CPU stage is done."""
        self._cache = {k: v for k, v in self._cache.items() if k[0] in keep}
        if not keep & {"frames", "pairs", "sampling", "flow", "flow_backward"}:
            for frames in self.sample.specs.values():
                frames.frames = frames.frames[:0]
