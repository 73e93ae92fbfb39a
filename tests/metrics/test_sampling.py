"""Frame sampling: which frames each spec gets, from one bounded decode."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import sampling
from metrics.definitions.clip import CLIP_FRAMES
from metrics.definitions.motion import MOTION_FRAMES
from metrics.definitions.pixel import ADJACENT_FRAMES
from metrics.errors import VideoDecodeError
from metrics.registry import FrameSpec
from tests.metrics.helpers import encode


def test_uniform_plan_spans_the_whole_video():
    indices, pairs, _ = sampling.plan(CLIP_FRAMES, 100, 24.0)
    assert len(indices) == 16 and indices[0] == 0 and indices[-1] == 99
    assert pairs == [(i, i + 1) for i in range(15)]
    short, _, _ = sampling.plan(CLIP_FRAMES, 5, 24.0)
    assert short == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("fps", "step"), [(24.0, 3), (30.0, 4), (12.0, 2), (8.0, 1), (60.0, 8)])
def test_rate_plan_uses_a_step_of_about_fps_over_8(fps, step):
    indices, pairs, got_step = sampling.plan(MOTION_FRAMES, int(fps * 4), fps)
    assert got_step == step
    assert all(b - a == step for a, b in zip(indices, indices[1:], strict=False))
    assert len(pairs) == len(indices) - 1


def test_rate_plan_covers_long_videos_with_segments_and_no_pair_across_them():
    indices, pairs, step = sampling.plan(MOTION_FRAMES, 24 * 60, 24.0)  # one minute
    assert len(indices) == 48 and step == 3
    assert len(pairs) == 45  # 3 segments of 16 frames
    assert all(indices[b] - indices[a] == 3 for a, b in pairs)
    assert indices[-1] > 24 * 50  # reaches the end


def test_adjacent_plan_pairs_truly_consecutive_frames():
    indices, pairs, step = sampling.plan(ADJACENT_FRAMES, 120, 24.0)
    assert step == 1.0 and len(pairs) == 16
    assert all(indices[b] == indices[a] + 1 for a, b in pairs)


def test_one_decode_serves_every_spec_at_bounded_sizes(tmp_path, monkeypatch):
    # frame i is uniformly grey with value 4 * i, so a frame tells which one it is
    frames = [np.full((320, 512, 3), 4 * i, dtype=np.uint8) for i in range(48)]
    path = encode(tmp_path / "ramp.mp4", frames, 24)
    calls = []
    real = sampling.decode_frames
    monkeypatch.setattr(sampling, "decode_frames", lambda *a, **k: calls.append(a) or real(*a, **k))

    sample = sampling.sample_video(path, [CLIP_FRAMES, MOTION_FRAMES, ADJACENT_FRAMES])

    assert len(calls) == 1
    assert sample.decode_size == (358, 224)
    clip, motion, adjacent = (sample.specs[s.key] for s in (CLIP_FRAMES, MOTION_FRAMES, ADJACENT_FRAMES))
    assert clip.size == (358, 224) and motion.size == (256, 160) and adjacent.size == (256, 160)
    assert motion.scale == (2.0, 2.0) and motion.step == 3.0
    for spec_frames in (clip, motion, adjacent):
        grey = spec_frames.frames.reshape(len(spec_frames.indices), -1).mean(axis=1)
        assert np.allclose(grey, 4 * np.array(spec_frames.indices), atol=3)
    described = motion.describe()
    assert described["indices"] == motion.indices and described["native_size"] == [512, 320]
    assert sample.decoded_frames <= 16 + 16 + 32


def test_small_videos_are_never_upscaled(tmp_path):
    path = encode(tmp_path / "small.mp4", [np.zeros((80, 128, 3), np.uint8)] * 10, 10)
    sample = sampling.sample_video(path, [CLIP_FRAMES, MOTION_FRAMES])
    assert sample.specs["clip16"].size == (128, 80)
    assert sample.specs["motion8fps"].size == (128, 80)


def test_native_size_comes_from_the_video_row_when_the_file_is_a_smaller_transcode(tmp_path):
    path = encode(tmp_path / "t.mp4", [np.zeros((160, 256, 3), np.uint8)] * 10, 10)
    sample = sampling.sample_video(path, [MOTION_FRAMES], native_size=(1024, 640))
    assert sample.native_size == (1024, 640)
    assert sample.specs["motion8fps"].scale == (4.0, 4.0)
    other = sampling.sample_video(path, [MOTION_FRAMES], native_size=(640, 640))  # not the same picture
    assert other.native_size == (256, 160)


def test_undecodable_and_missing_files_raise_a_permanent_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError, match="undecodable video"):
        sampling.sample_video(bad, [CLIP_FRAMES])
    with pytest.raises(VideoDecodeError, match="not found"):
        sampling.sample_video(tmp_path / "missing.mp4", [CLIP_FRAMES])


def test_frame_spec_validates_its_mode():
    with pytest.raises(ValueError):
        FrameSpec("x", "sometimes", 4)
    with pytest.raises(ValueError):
        FrameSpec("x", "rate", 4)
