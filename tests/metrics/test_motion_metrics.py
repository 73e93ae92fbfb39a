"""Flow, dynamic degree, motion AC, warping error and flicker on videos whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.functional import motion as F
from tests.metrics.helpers import encode, pan_frames, run_engine, texture

MOTION = ["flow_score", "dynamic_degree", "warping_error", "temporal_flickering"]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("size", [(512, 320), (256, 160)])
@pytest.mark.parametrize("fps", [24, 12])
def test_flow_score_of_a_pan_is_k_pixels_per_native_frame(tmp_path, k, size, fps):
    width, height = size
    path = encode(tmp_path / "pan.mp4", pan_frames(width, height, k, n=2 * fps, seed=k), fps)
    scores, _ = run_engine(path, ["flow_score"])
    assert scores["flow_score"].ok
    assert scores["flow_score"].value == pytest.approx(k, rel=0.10)
    sampling = scores["flow_score"].details["sampling"]
    assert sampling["step"] == round(fps / 8) and sampling["native_size"] == [width, height]


def test_static_clip(tmp_path):
    frame = texture(160, 256, seed=3)
    path = encode(tmp_path / "static.mp4", [frame] * 48, 24)
    scores, _ = run_engine(path, MOTION)
    assert scores["flow_score"].value == pytest.approx(0.0, abs=0.02)
    assert scores["dynamic_degree"].value == 0.0
    assert scores["temporal_flickering"].value == pytest.approx(1.0, abs=1e-3)
    assert scores["warping_error"].value == pytest.approx(0.0, abs=1e-4)


def test_dynamic_degree_of_a_fast_pan_is_one(tmp_path):
    # 3 px per frame at 24 fps = 9 px between 8 fps samples > 6 * 320 / 256 = 7.5 px
    path = encode(tmp_path / "pan.mp4", pan_frames(512, 320, 3, n=48), 24)
    scores, _ = run_engine(path, ["dynamic_degree"])
    assert scores["dynamic_degree"].value == 1.0


def test_strobing_flickers_more_than_a_static_clip(tmp_path):
    frame = texture(160, 256, seed=4)
    dark = (frame * 0.6).astype(np.uint8)
    static = encode(tmp_path / "static.mp4", [frame] * 24, 24)
    strobe = encode(tmp_path / "strobe.mp4", [frame if i % 2 else dark for i in range(24)], 24)
    still = run_engine(static, ["temporal_flickering"])[0]["temporal_flickering"].value
    strobing = run_engine(strobe, ["temporal_flickering"])[0]["temporal_flickering"].value
    assert strobing < still - 0.1


def test_warping_error_is_near_zero_for_translation_and_large_for_noise(tmp_path):
    pan = encode(tmp_path / "pan.mp4", pan_frames(256, 160, 2, n=48), 24)
    rng = np.random.default_rng(0)
    noise = encode(tmp_path / "noise.mp4", [rng.integers(0, 256, (160, 256, 3), dtype=np.uint8) for _ in range(48)], 24)
    translated = run_engine(pan, ["warping_error"])[0]["warping_error"].value
    noisy = run_engine(noise, ["warping_error"])[0]["warping_error"].value
    assert translated < 1e-3
    assert noisy > 20 * translated and noisy > 1e-3


@pytest.mark.parametrize(
    ("k", "tag", "expected"),
    [(6, "fast", 1.0), (6, "large", 1.0), (6, "slow", 0.0), (1, "slow", 1.0), (1, "fast", 0.0)],
)
def test_motion_ac_compares_the_measured_amplitude_with_the_prompt_tag(tmp_path, k, tag, expected):
    path = encode(tmp_path / "pan.mp4", pan_frames(256, 160, k, n=24), 12)
    scores, _ = run_engine(path, ["flow_score", "motion_ac"], tags={"motion": tag})
    assert (scores["flow_score"].value > 5) == (k == 6)
    assert scores["motion_ac"].value == expected


def test_motion_ac_does_not_apply_to_untagged_prompts():
    from metrics.registry import get_metric

    metric = get_metric("motion_ac")
    assert not metric.applies({}) and not metric.applies({"motion": "medium"})
    assert metric.applies({"motion": "FAST"}) and metric.applies({"motion": "slow"})


def test_a_one_frame_video_fails_temporal_metrics_with_a_reason(tmp_path):
    path = encode(tmp_path / "one.mp4", [texture(80, 128)], 24)
    scores, _ = run_engine(path, ["flow_score", "temporal_flickering"])
    assert not scores["flow_score"].ok and "at least 2 frames" in scores["flow_score"].error
    assert not scores["temporal_flickering"].ok


def test_pure_functions_on_arrays():
    flow = np.zeros((4, 10, 20, 2), np.float32)
    flow[..., 0] = 3.0
    flow[..., 1] = 4.0
    assert F.flow_score(flow, (2.0, 2.0), 2.0) == pytest.approx(5.0)
    assert F.dynamic_degree(flow, (1.0, 1.0), (20, 10)) == 1.0
    assert F.dynamic_degree(flow * 0, (1.0, 1.0), (20, 10)) == 0.0
    assert F.motion_ac(5.1, "large") == 1.0 and F.motion_ac(5.0, "large") == 0.0
    assert F.amplitude_of({"motion": "Fast"}) == "large" and F.amplitude_of({"x": 1}) is None
