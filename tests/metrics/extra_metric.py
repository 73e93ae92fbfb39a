"""An extra metric added by settings (METRICS_EXTRA): one module, one registration."""

from __future__ import annotations

import numpy as np

from metrics.definitions.pixel import ADJACENT_FRAMES
from metrics.registry import Metric, register


def mean_brightness(frames: np.ndarray) -> float:
    return float(np.asarray(frames, dtype=np.float64).mean() / 255.0)


register(
    Metric(
        name="mean_brightness",
        version="1",
        frames=ADJACENT_FRAMES,
        inputs=("frames",),
        fn=mean_brightness,
        higher_is_better=None,
        range=(0.0, 1.0),
        group="pixel",
        description="Mean pixel value (test metric).",
    )
)

#: Registered only when METRICS_EXTRA names this object itself.
LAST_FRAME_BRIGHTNESS = Metric(
    name="last_frame_brightness",
    version="1",
    frames=ADJACENT_FRAMES,
    inputs=("frames",),
    fn=lambda frames: mean_brightness(frames[-1:]),
    higher_is_better=None,
    range=(0.0, 1.0),
    group="pixel",
)
