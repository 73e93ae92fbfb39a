"""CLIP metrics (open_clip; model and weights from settings, see ``metrics/clip_config.py``).

Frames: 16 spread uniformly over the video, short side 224, then the model's own
preprocessing. Our absolute values are not EvalCrafter's: EvalCrafter feeds CLIP raw 0-255
pixels without CLIP's normalisation (hence its CLIP-Temp of 99.6-99.99 for every model); we
use CLIP's preprocessing, so compare our numbers with each other, not with its leaderboard.
The version carries the model and weights (e.g. ``1+ViT-B-32/openai``).
"""

from __future__ import annotations

from metrics.clip_config import clip_identity
from metrics.functional import clip as F
from metrics.registry import GROUP_CLIP, FrameSpec, Metric, register

CLIP_FRAMES = FrameSpec("clip16", "uniform", 16, short_side=224)


def _clip_metric(name: str, inputs: tuple[str, ...], fn, description: str, value_range=(-1.0, 1.0)) -> Metric:
    return register(
        Metric(
            name=name,
            version="1",
            frames=CLIP_FRAMES,
            inputs=inputs,
            fn=fn,
            higher_is_better=True,
            range=value_range,
            group=GROUP_CLIP,
            description=description,
            backend=clip_identity,
        )
    )


clip_score = _clip_metric(
    "clip_score",
    ("clip_image", "clip_text"),
    lambda clip_image, clip_text: F.clip_score(clip_image, clip_text),
    "Text-video alignment: mean cosine of CLIP frame and prompt embeddings (raw cosine, not x100; "
    "not comparable with EvalCrafter's absolute values).",
)
clip_temp = _clip_metric(
    "clip_temp",
    ("clip_image",),
    lambda clip_image: F.clip_temp(clip_image),
    "Semantic temporal consistency: mean cosine of consecutive sampled frames' CLIP embeddings "
    "(model's own preprocessing; not EvalCrafter's scale).",
)
first_frame_consistency = _clip_metric(
    "first_frame_consistency",
    ("clip_image",),
    lambda clip_image: F.first_frame_consistency(clip_image),
    "Drift from the opening frame: mean cosine of each sampled frame's CLIP embedding with the first's "
    "(not EvalCrafter's scale).",
)
background_consistency = _clip_metric(
    "background_consistency",
    ("clip_image",),
    lambda clip_image: F.background_consistency(clip_image),
    "VBench's consistency with CLIP: mean of clipped cosines with the previous and the first frame "
    "(not EvalCrafter's or VBench's absolute scale).",
    value_range=(0.0, 1.0),
)
