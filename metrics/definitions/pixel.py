"""Pixel metrics. Frames: 16 pairs of truly consecutive native frames spread over the video
(flicker lives between adjacent frames: a strobe at the native rate would vanish at a 2-frame
step), long side at most 256 px."""

from __future__ import annotations

from metrics.functional import pixel as F
from metrics.registry import GROUP_PIXEL, FrameSpec, Metric, register

ADJACENT_FRAMES = FrameSpec("adjacent16", "adjacent", 16, long_side=256)

temporal_flickering = register(
    Metric(
        name="temporal_flickering",
        version="1",
        frames=ADJACENT_FRAMES,
        inputs=("frames", "pairs"),
        fn=lambda frames, pairs: F.temporal_flickering(frames, pairs),
        higher_is_better=True,
        range=(0.0, 1.0),
        group=GROUP_PIXEL,
        description="VBench's temporal flickering: (255 - mean |I_t - I_t+1|) / 255 over adjacent frames.",
    )
)
