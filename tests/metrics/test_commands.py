"""compute_metrics PROJECT [--metric M] [--force]."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from metrics.models import MetricScore
from tests.metrics.helpers import pan_frames


def test_compute_metrics_command(make_video, settings, capsys):
    settings.METRICS_ENABLED = ["flow_score", "temporal_flickering"]
    first = make_video(pan_frames(128, 80, 2, 16), fps=16)
    make_video(pan_frames(128, 80, 1, 16), fps=16, project=first.project, generator="gen-b")

    call_command("compute_metrics", first.project.name, "--metric", "flow_score", "--batch-size", "1")
    assert MetricScore.objects.filter(metric="flow_score").count() == 2
    assert not MetricScore.objects.filter(metric="temporal_flickering").exists()
    assert "2 videos, 2 scores stored" in capsys.readouterr().out

    call_command("compute_metrics", str(first.project_id), "--no-progress")
    assert MetricScore.objects.count() == 4
    call_command("compute_metrics", str(first.project_id), "--no-progress")
    assert "nothing to compute" in capsys.readouterr().out

    MetricScore.objects.update(value=-1.0)
    call_command("compute_metrics", first.project.name, "--force", "--metric", "flow_score", "--no-progress")
    assert MetricScore.objects.filter(value=-1.0).count() == 2  # only flow_score recomputed


def test_compute_metrics_enqueue_and_errors(make_video, settings, capsys, django_capture_on_commit_callbacks):
    settings.METRICS_ENABLED = ["temporal_flickering"]
    video = make_video(pan_frames(128, 80, 2, 8))
    with django_capture_on_commit_callbacks(execute=True):  # tasks run in process in tests
        call_command("compute_metrics", video.project.name, "--enqueue")
    assert "enqueued 1 tasks" in capsys.readouterr().out
    assert MetricScore.objects.filter(video=video).count() == 1
    with pytest.raises(CommandError, match="not registered or not enabled"):
        call_command("compute_metrics", video.project.name, "--metric", "clip_score")
    with pytest.raises(CommandError, match="no project"):
        call_command("compute_metrics", "missing-project")
