"""Optical-flow metrics. Frames: about 8 per second (a step of round(fps / 8) native frames,
at most 48 frames, in segments of 16 for long videos), long side at most 256 px (half
resolution for 512-px clips). Flow: OpenCV Farneback, or RAFT when ``RAFT_WEIGHTS`` is set;
the backend is part of the version (``1+farneback`` / ``1+raft``)."""

from __future__ import annotations

from metrics.flow import flow_backend_name
from metrics.functional import motion as F
from metrics.registry import GROUP_MOTION, FrameSpec, Metric, register

MOTION_FRAMES = FrameSpec("motion8fps", "rate", 48, long_side=256, rate=8.0, segment=16)


def _flow_score(flow, sampling) -> float:
    return F.flow_score(flow, sampling.scale, sampling.step)


def _motion_ac(flow, sampling, tags) -> float:
    amplitude = F.amplitude_of(tags)
    if amplitude is None:
        raise ValueError("the prompt has no motion amplitude tag")
    return F.motion_ac(_flow_score(flow, sampling), amplitude)


flow_score = register(
    Metric(
        name="flow_score",
        version="1",
        frames=MOTION_FRAMES,
        inputs=("flow", "sampling"),
        fn=_flow_score,
        higher_is_better=None,
        range=(0.0, None),
        group=GROUP_MOTION,
        description="Amount of motion: mean optical-flow magnitude, native pixels per native frame.",
        backend=flow_backend_name,
    )
)
motion_ac = register(
    Metric(
        name="motion_ac",
        version="1",
        frames=MOTION_FRAMES,
        inputs=("flow", "sampling", "tags"),
        fn=_motion_ac,
        higher_is_better=True,
        range=(0.0, 1.0),
        group=GROUP_MOTION,
        description='1 when the motion amplitude ("large" if flow_score > 5 px, else "slow") matches the '
        "prompt's motion tag (fast/large or slow), else 0; only for tagged prompts.",
        backend=flow_backend_name,
        applies_to=lambda tags: F.amplitude_of(tags) is not None,
    )
)
dynamic_degree = register(
    Metric(
        name="dynamic_degree",
        version="1",
        frames=MOTION_FRAMES,
        inputs=("flow", "sampling"),
        fn=lambda flow, sampling: F.dynamic_degree(flow, sampling.scale, sampling.native_size),
        higher_is_better=None,
        range=(0.0, 1.0),
        group=GROUP_MOTION,
        description="VBench's dynamic degree: 1 if enough frame pairs have large top-5% flow, else 0.",
        backend=flow_backend_name,
    )
)
warping_error = register(
    Metric(
        name="warping_error",
        version="1",
        frames=MOTION_FRAMES,
        inputs=("frames", "pairs", "flow", "flow_backward"),
        fn=lambda frames, pairs, flow, flow_backward: F.warping_error(frames, pairs, flow, flow_backward),
        higher_is_better=False,
        range=(0.0, 1.0),
        group=GROUP_MOTION,
        description="Pixel-level temporal consistency: masked squared error between a frame and the next "
        "warped back by the flow (pixels in [0, 1], occlusions and motion boundaries excluded).",
        backend=flow_backend_name,
    )
)
