"""The registry: declarations, settings that enable, disable and add metrics, versions."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from metrics.registry import FrameSpec, Metric, all_metrics, enabled_metrics, get_metric, resolve_metrics
from tests.metrics.helpers import encode, run_engine, texture

BUILTIN = {
    "clip_score",
    "clip_temp",
    "first_frame_consistency",
    "background_consistency",
    "flow_score",
    "motion_ac",
    "dynamic_degree",
    "warping_error",
    "temporal_flickering",
}


def test_builtin_metrics_declare_what_they_need():
    registered = all_metrics()
    assert BUILTIN <= set(registered)
    for name in BUILTIN:
        metric = registered[name]
        assert metric.version and metric.frames.count > 0 and metric.inputs
        assert metric.higher_is_better in (True, False, None)
        assert len(metric.range) == 2
        assert "name" in metric.describe()
    assert registered["warping_error"].higher_is_better is False
    assert registered["flow_score"].higher_is_better is None  # descriptive
    assert registered["clip_score"].model_provider == "clip"
    assert registered["clip_score"].frames.count == 16 and registered["clip_score"].frames.short_side == 224
    assert registered["flow_score"].frames.rate == 8.0


def test_settings_enable_and_disable(settings):
    settings.METRICS_ENABLED = ["flow_score", "clip_temp"]
    assert [m.name for m in enabled_metrics()] == ["flow_score", "clip_temp"]
    settings.METRICS_ENABLED = []
    settings.METRICS_DISABLED = ["warping_error"]
    names = {m.name for m in enabled_metrics()}
    assert "warping_error" not in names and "flow_score" in names
    settings.METRICS_DISABLED = ["no_such_metric"]
    with pytest.raises(ImproperlyConfigured, match="no_such_metric"):
        enabled_metrics()


def test_resolve_refuses_disabled_or_unknown_names(settings):
    settings.METRICS_DISABLED = ["clip_score"]
    with pytest.raises(ValueError, match="clip_score"):
        resolve_metrics(["clip_score"])
    assert [m.name for m in resolve_metrics(["flow_score"])] == ["flow_score"]


def test_extra_metrics_by_dotted_path(settings, tmp_path):
    settings.METRICS_EXTRA = ["tests.metrics.extra_metric", "tests.metrics.extra_metric.LAST_FRAME_BRIGHTNESS"]
    names = {m.name for m in enabled_metrics()}
    assert {"mean_brightness", "last_frame_brightness"} <= names
    frame = np.full((80, 128, 3), 128, np.uint8)
    scores, _ = run_engine(encode(tmp_path / "grey.mp4", [frame] * 10, 10), ["mean_brightness"])
    assert scores["mean_brightness"].value == pytest.approx(128 / 255, abs=0.01)


def test_a_bad_extra_path_is_a_configuration_error(settings):
    settings.METRICS_EXTRA = ["tests.metrics.no_such_module"]
    with pytest.raises(ImproperlyConfigured, match="METRICS_EXTRA"):
        all_metrics()


def test_versions_carry_the_backend(settings, tiny_clip):
    assert get_metric("flow_score").current_version == "1+farneback"
    settings.RAFT_WEIGHTS = "/weights/raft_large.pth"
    assert get_metric("warping_error").current_version == "1+raft"
    assert get_metric("temporal_flickering").current_version == "1"
    assert get_metric("clip_temp").current_version == f"1+{tiny_clip}/random"
    settings.CLIP_MODEL, settings.CLIP_PRETRAINED = "ViT-B-32", "openai"
    assert get_metric("clip_temp").current_version == "1+ViT-B-32/openai"


def test_a_metric_must_ask_for_known_inputs():
    with pytest.raises(ValueError, match="unknown inputs"):
        Metric("x", "1", FrameSpec("k", "uniform", 2), ("pixels",), lambda pixels: 0.0, None, (0, 1), "pixel")


def test_raft_backend_when_weights_are_configured(settings, tmp_path):
    import torch
    from torchvision.models.optical_flow import raft_small

    from metrics import flow

    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    settings.RAFT_WEIGHTS = str(weights)
    settings.METRICS_DEVICE = "cpu"
    flow._raft.clear()
    frames = [texture(64, 96, seed=1)] * 9
    scores, result = run_engine(encode(tmp_path / "s.mp4", frames, 8), ["flow_score"])
    assert scores["flow_score"].ok and scores["flow_score"].version == "1+raft"
    assert scores["flow_score"].details["backend"]["flow"] == "raft"

    settings.RAFT_WEIGHTS = str(tmp_path / "missing.pth")
    scores, result = run_engine(encode(tmp_path / "s.mp4", frames, 8), ["flow_score", "temporal_flickering"])
    assert set(scores) == {"temporal_flickering"}
    assert "RAFT_WEIGHTS" in result.not_configured["flow_score"]
