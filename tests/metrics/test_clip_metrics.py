"""CLIP metrics with a tiny random-weight open_clip model (the pipeline and math are checked,
not the weights), and the "not configured" paths."""

from __future__ import annotations

import time

import numpy as np
import pytest

from metrics.definitions.clip import CLIP_FRAMES
from metrics.sampling import sample_video
from tests.metrics.helpers import blend_frames, encode, run_engine

CLIP = ["clip_score", "clip_temp", "first_frame_consistency", "background_consistency"]


def test_clip_score_equals_an_independent_computation(tmp_path, tiny_clip):
    import open_clip
    import torch
    from PIL import Image

    from metrics.clip_backend import get_clip_backend

    frames, _, _ = blend_frames(n=40)
    path = encode(tmp_path / "blend.mp4", frames, 24)
    text = "a red wall slowly turns blue"
    scores, _ = run_engine(path, ["clip_score"], text=text)

    # independently: the same sampled frames, PIL preprocessing frame by frame, torch cosine
    sampled = sample_video(path, [CLIP_FRAMES]).specs[CLIP_FRAMES.key].frames
    backend = get_clip_backend("cpu")
    model, preprocess = backend.model, backend.preprocess
    with torch.no_grad():
        text_emb = model.encode_text(open_clip.get_tokenizer(tiny_clip)([text]))[0]
        cosines = [
            torch.nn.functional.cosine_similarity(
                model.encode_image(preprocess(Image.fromarray(f)).unsqueeze(0))[0], text_emb, dim=0
            ).item()
            for f in sampled
        ]
    assert scores["clip_score"].value == pytest.approx(float(np.mean(cosines)), abs=1e-5)
    assert scores["clip_score"].details["backend"]["model"] == tiny_clip
    assert scores["clip_score"].version == f"1+{tiny_clip}/random"
    assert scores["clip_score"].details["sampling"]["frames"] == 16


def test_static_clip_is_perfectly_consistent(tmp_path, tiny_clip):
    frames, _, _ = blend_frames(n=24)
    path = encode(tmp_path / "static.mp4", [frames[5]] * 24, 24)
    scores, _ = run_engine(path, CLIP)
    assert scores["clip_temp"].value == pytest.approx(1.0, abs=1e-4)
    assert scores["first_frame_consistency"].value == pytest.approx(1.0, abs=1e-4)
    assert scores["background_consistency"].value == pytest.approx(1.0, abs=1e-4)


def test_shuffled_frames_and_hard_cuts_are_less_consistent_than_a_smooth_clip(tmp_path, tiny_clip):
    smooth, a, b = blend_frames(n=48)
    shuffled = [smooth[i] for i in np.random.default_rng(0).permutation(48)]
    cut = [a] * 24 + [b] * 24
    values = {}
    for name, frames in {"smooth": smooth, "shuffled": shuffled, "cut": cut}.items():
        scores, _ = run_engine(encode(tmp_path / f"{name}.mp4", frames, 24), CLIP)
        values[name] = {m: s.value for m, s in scores.items()}
    for other in ("shuffled", "cut"):
        assert values[other]["clip_temp"] < values["smooth"]["clip_temp"]
        assert values[other]["first_frame_consistency"] < values["smooth"]["first_frame_consistency"]
    assert values["shuffled"]["background_consistency"] < values["smooth"]["background_consistency"]


def test_text_is_truncated_to_the_context_length(tmp_path, tiny_clip):
    frames, _, _ = blend_frames(n=8)
    path = encode(tmp_path / "b.mp4", frames, 8)
    scores, _ = run_engine(path, ["clip_score"], text="very " * 500 + "long prompt")
    assert scores["clip_score"].ok


def _not_configured(tmp_path, settings, **overrides):
    from metrics.clip_backend import clear_cache

    clear_cache()
    for name, value in overrides.items():
        setattr(settings, name, value)
    frames, _, _ = blend_frames(n=8)
    path = encode(tmp_path / "b.mp4", frames, 8)
    return run_engine(path, [*CLIP, "temporal_flickering"])


def test_a_missing_checkpoint_is_a_clear_error_and_leaves_clip_metrics_not_configured(tmp_path, settings):
    scores, result = _not_configured(tmp_path, settings, CLIP_CHECKPOINT=str(tmp_path / "nope.pt"))
    assert set(scores) == {"temporal_flickering"}  # the other metrics still run
    assert set(result.not_configured) == set(CLIP)
    assert "CLIP_CHECKPOINT" in result.not_configured["clip_score"]
    assert "not configured" in result.not_configured["clip_score"]


def test_without_weights_no_random_model_is_built_outside_tests(tmp_path, settings):
    _, result = _not_configured(
        tmp_path, settings, CLIP_CHECKPOINT="", CLIP_PRETRAINED="", CLIP_ALLOW_RANDOM_WEIGHTS=False
    )
    assert "CLIP_PRETRAINED" in result.not_configured["clip_temp"]
    assert "random weights" in result.not_configured["clip_temp"]


def test_a_pretrained_tag_not_in_the_cache_fails_fast_without_network(tmp_path, settings):
    started = time.monotonic()
    _, result = _not_configured(
        tmp_path, settings, CLIP_MODEL="ViT-B-32", CLIP_PRETRAINED="openai", CLIP_CHECKPOINT="",
        CLIP_CACHE_DIR=str(tmp_path / "empty-cache"), CLIP_ALLOW_DOWNLOAD=False,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    message = result.not_configured["clip_score"]
    assert "CLIP_PRETRAINED='openai'" in message and "cache" in message


def test_an_unknown_tag_names_the_setting(tmp_path, settings):
    _, result = _not_configured(
        tmp_path, settings, CLIP_MODEL="ViT-B-32", CLIP_PRETRAINED="no-such-tag", CLIP_CHECKPOINT=""
    )
    assert "CLIP_PRETRAINED='no-such-tag'" in result.not_configured["clip_score"]


def test_a_checkpoint_file_is_loaded(tmp_path, tiny_clip, settings):
    import torch

    from metrics.clip_backend import clear_cache, get_clip_backend

    reference = get_clip_backend("cpu").model
    checkpoint = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), checkpoint)
    settings.CLIP_CHECKPOINT = str(checkpoint)
    settings.CLIP_ALLOW_RANDOM_WEIGHTS = False
    clear_cache()
    frames, _, _ = blend_frames(n=8)
    scores, result = run_engine(encode(tmp_path / "b.mp4", frames, 8), ["clip_score"])
    assert not result.not_configured
    assert scores["clip_score"].version == f"1+{tiny_clip}/ckpt:tiny.pt"


def test_asking_for_cuda_without_cuda_is_a_clear_error(tmp_path, tiny_clip, settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    settings.METRICS_DEVICE = "cuda"
    frames, _, _ = blend_frames(n=8)
    _, result = run_engine(encode(tmp_path / "b.mp4", frames, 8), ["clip_score"])
    assert "METRICS_DEVICE" in result.not_configured["clip_score"]
