"""Reads: per-project status, scores per video, and the analysis frame."""

from __future__ import annotations

import pandas as pd
import pytest

from metrics.models import MetricBackendStatus, MetricScore
from metrics.selectors import (
    SCORES_FRAME_COLUMNS,
    metric_scores_missing,
    metric_status_for_project,
    scores_for_videos,
    scores_frame,
)
from metrics.services import metric_scores_compute
from tests.metrics.helpers import pan_frames


@pytest.fixture
def project_videos(make_video, settings):
    settings.METRICS_ENABLED = ["flow_score", "motion_ac", "temporal_flickering", "clip_score"]
    settings.CLIP_PRETRAINED, settings.CLIP_CHECKPOINT, settings.CLIP_ALLOW_RANDOM_WEIGHTS = "", "", False
    good = make_video(pan_frames(128, 80, 2, 16), fps=16, tags={"motion": "slow"})
    other = make_video(pan_frames(128, 80, 1, 16), fps=16, project=good.project, generator="gen-b")
    bad = make_video(pan_frames(128, 80, 1, 16), fps=16, project=good.project, generator="gen-c")
    (settings.MEDIA_ROOT / bad.browser).write_bytes(b"junk" * 100)
    make_video(pan_frames(128, 80, 1, 4), project=good.project, status="pending")
    metric_scores_compute(video_ids=[good.id, other.id, bad.id])
    return good, other, bad


def test_status_counts_done_pending_failed_with_reasons(project_videos):
    good, other, bad = project_videos
    status = {row["name"]: row for row in metric_status_for_project(project_id=good.project_id)}
    flow = status["flow_score"]
    assert (flow["total"], flow["done"], flow["failed"], flow["pending"]) == (3, 2, 1, 0)
    assert flow["failure_reasons"][0]["count"] == 1
    assert flow["failure_reasons"][0]["reason"].startswith("undecodable video")
    assert flow["version"] == "1+farneback" and flow["state"] == "complete" and flow["configured"]
    # motion_ac applies to the one tagged prompt only
    assert (status["motion_ac"]["total"], status["motion_ac"]["not_applicable"], status["motion_ac"]["done"]) == (
        1,
        2,
        1,
    )
    # CLIP: no weights at all -> not configured, every video still pending
    clip = status["clip_score"]
    assert clip["state"] == "not configured" and not clip["configured"] and clip["pending"] == 3
    assert "CLIP_CHECKPOINT" in clip["not_configured_reason"]


def test_a_worker_report_marks_a_backend_not_configured_for_these_settings_only(project_videos, settings):
    good, _, _ = project_videos
    settings.CLIP_PRETRAINED = "openai"
    MetricBackendStatus.objects.update_or_create(
        backend="clip",
        defaults={
            "configured": False,
            "setting": "CLIP_PRETRAINED",
            "message": "not in the cache",
            "identity": "ViT-B-32/openai",
        },
    )
    status = {row["name"]: row for row in metric_status_for_project(project_id=good.project_id)}
    assert status["clip_score"]["state"] == "not configured"
    assert status["clip_score"]["not_configured_reason"] == "not in the cache"
    settings.CLIP_PRETRAINED = "laion2b_s34b_b79k"  # new settings: the old report no longer applies
    status = {row["name"]: row for row in metric_status_for_project(project_id=good.project_id)}
    assert status["clip_score"]["state"] == "pending"


def test_missing_scores_per_video(project_videos):
    good, other, bad = project_videos
    missing = metric_scores_missing(project_id=good.project_id)
    assert {m.name for m in missing[good.id]} == {"clip_score"}
    assert bad.id in missing  # only clip_score: the failures count as stored
    assert {m.name for m in metric_scores_missing(project_id=good.project_id, retry_failed=True)[bad.id]} >= {
        "flow_score"
    }


def test_scores_for_videos_show_current_versions_and_external_scores(project_videos):
    good, other, bad = project_videos
    MetricScore.objects.create(video=good, metric="flow_score", version="0+old", value=123.0)
    MetricScore.objects.create(video=good, metric="dover", version="external", value=0.7, source="external")
    scores = scores_for_videos(video_ids=[good.id, bad.id, 10**9])
    assert scores[10**9] == []
    by_metric = {(s["metric"], s["version"]): s for s in scores[good.id]}
    assert ("flow_score", "0+old") not in by_metric
    assert by_metric[("flow_score", "1+farneback")]["higher_is_better"] is None
    assert by_metric[("dover", "external")]["group"] == "external"
    assert {s["status"] for s in scores[bad.id]} == {"failed"}
    everything = scores_for_videos(video_ids=[good.id], current_only=False, include_details=True)[good.id]
    assert ("flow_score", "0+old") in {(s["metric"], s["version"]) for s in everything}
    assert any("sampling" in s["details"] for s in everything)


def test_scores_frame_for_analysis(project_videos):
    good, other, bad = project_videos
    MetricScore.objects.create(video=other, metric="dover", version="external", value=0.5, source="external")
    frame = scores_frame(project_id=good.project_id)
    assert list(frame.columns) == SCORES_FRAME_COLUMNS
    assert isinstance(frame, pd.DataFrame)
    assert not (frame["video_id"] == bad.id).any()  # failed scores have no value
    row = frame[(frame.video_id == good.id) & (frame.metric == "flow_score")].iloc[0]
    assert row.prompt_id == good.prompt_id and row.generator == "gen-a" and row.value == pytest.approx(2, rel=0.1)
    assert ((frame.metric == "dover") & (frame.generator == "gen-b")).sum() == 1
    assert scores_frame(project_id=10**9).empty


def test_external_status_rows(project_videos):
    good, other, _ = project_videos
    MetricScore.objects.create(video=good, metric="dover", version="v2", value=0.5, source="external")
    MetricScore.objects.create(video=other, metric="dover", version="v2", value=0.6, source="external")
    rows = [r for r in metric_status_for_project(project_id=good.project_id) if r["source"] == "external"]
    assert len(rows) == 1 and rows[0]["name"] == "dover" and rows[0]["done"] == 2 and rows[0]["version"] == "v2"
