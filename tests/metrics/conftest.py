"""Fixtures: videos under MEDIA_ROOT, rows to hang them on, and a tiny random CLIP."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.metrics.helpers import encode

TINY_CLIP = "vidjudge-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture
def media_video(settings) -> Callable[..., str]:
    """Write frames as an MP4 under MEDIA_ROOT; returns the path relative to it."""

    def make(name: str, frames: Sequence[np.ndarray], fps: float = 24) -> str:
        encode(Path(settings.MEDIA_ROOT) / "videos" / name, frames, fps)
        return f"videos/{name}"

    return make


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory) -> str:
    import open_clip

    path = tmp_path_factory.mktemp("clip") / f"{TINY_CLIP}.json"
    path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(path)
    return TINY_CLIP


@pytest.fixture
def tiny_clip(settings, tiny_clip_config) -> str:
    """Settings for a tiny random-weight CLIP (tests only: CLIP_ALLOW_RANDOM_WEIGHTS)."""
    settings.CLIP_MODEL = tiny_clip_config
    settings.CLIP_PRETRAINED = ""
    settings.CLIP_CHECKPOINT = ""
    settings.CLIP_ALLOW_RANDOM_WEIGHTS = True
    settings.METRICS_DEVICE = "cpu"
    return tiny_clip_config


@pytest.fixture
def make_video(db, media_video) -> Callable[..., object]:
    """A ready Video row (with project, generator and prompt) whose file holds ``frames``."""
    from annotation.models import Generator, Project, Prompt, Video

    counter = {"n": 0}

    def make(
        frames: Sequence[np.ndarray] | None = None,
        *,
        fps: float = 24,
        text: str = "a camera pans over a textured wall",
        tags: dict | None = None,
        project=None,
        generator: str = "gen-a",
        browser: str | None = None,
        status: str = "ready",
    ):
        counter["n"] += 1
        n = counter["n"]
        project = project or Project.objects.get_or_create(name="metrics-test")[0]
        gen = Generator.objects.get_or_create(project=project, name=generator)[0]
        prompt = Prompt.objects.create(project=project, external_id=f"p{n}", text=text, tags=tags or {})
        if browser is None:
            browser = media_video(f"v{n}.mp4", frames, fps)
        height, width = (frames[0].shape[:2]) if frames is not None else (0, 0)
        return Video.objects.create(
            project=project,
            prompt=prompt,
            generator=gen,
            source=f"v{n}.mp4",
            browser=browser,
            status=status,
            error="" if status != "failed" else "broken",
            fps=fps,
            width=width or None,
            height=height or None,
        )

    return make


@pytest.fixture(autouse=True)
def _metrics_enqueue_on_ready(settings):
    """tests/settings.py turns enqueue-on-ready off for the rest of the suite; metrics tests need it."""
    settings.METRICS_ENQUEUE_ON_READY = True
