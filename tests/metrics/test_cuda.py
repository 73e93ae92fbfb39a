"""The CUDA path (half precision, inference mode) where CUDA exists; skipped cleanly elsewhere."""

from __future__ import annotations

import pytest

from tests.metrics.helpers import blend_frames, encode, run_engine


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="CUDA is not available")
def test_clip_metrics_on_cuda_match_the_cpu(tmp_path, tiny_clip, settings):
    frames, _, _ = blend_frames(n=24)
    path = encode(tmp_path / "b.mp4", frames, 24)
    names = ["clip_score", "clip_temp", "first_frame_consistency"]
    settings.METRICS_DEVICE = "cpu"
    cpu, _ = run_engine(path, names, text="a red wall turns blue")
    settings.METRICS_DEVICE = "cuda"
    gpu, _ = run_engine(path, names, text="a red wall turns blue")
    assert gpu["clip_score"].details["backend"]["precision"] == "fp16"
    assert gpu["clip_score"].details["backend"]["device"] == "cuda"
    for name in names:
        assert gpu[name].value == pytest.approx(cpu[name].value, abs=5e-3)
