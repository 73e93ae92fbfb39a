"""Workers: enqueue on commit, idempotency, permanent failures, retries, and crashes that
leave nothing partial."""

from __future__ import annotations

import pytest
from django.db import OperationalError, transaction

from annotation.models import Video
from metrics import services
from metrics.models import MetricBackendStatus, MetricScore
from metrics.registry import enabled_metrics
from metrics.services import metric_scores_compute, metric_scores_enqueue_for_video
from metrics.tasks import metrics_compute_batch
from tests.metrics.helpers import pan_frames, values

CHEAP = ["flow_score", "dynamic_degree", "temporal_flickering", "motion_ac"]


@pytest.fixture
def cheap_metrics(settings):
    settings.METRICS_ENABLED = CHEAP
    return CHEAP


def test_a_ready_video_is_enqueued_on_commit_for_every_enabled_metric(
    make_video, tiny_clip, django_capture_on_commit_callbacks
):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16, tags={"motion": "slow"}, status="pending")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        video.status = Video.STATUS_READY
        video.save(update_fields=["status"])
        assert metric_scores_enqueue_for_video(video_id=video.id) == 1
        assert not MetricScore.objects.exists()  # nothing runs before the commit
    # The metrics task; then, registered by the task once it stored the scores, the dashboard's
    # invalidation (the project's cached analysis is stale).
    assert len(callbacks) == 2
    stored = values(video)
    assert set(stored) == {m.name for m in enabled_metrics()}
    assert all(v is not None for v in stored.values())
    score = MetricScore.objects.get(video=video, metric="clip_score")
    assert score.details["sampling"]["mode"] == "uniform" and score.source == "computed"
    assert MetricBackendStatus.objects.get(backend="clip").configured
    # everything there: nothing more to enqueue
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert metric_scores_enqueue_for_video(video_id=video.id) == 0
    assert not callbacks


def test_untagged_prompts_are_not_enqueued_for_motion_ac(make_video, settings, django_capture_on_commit_callbacks):
    settings.METRICS_ENABLED = ["motion_ac"]
    video = make_video(pan_frames(128, 80, 2, 16), fps=16)
    with django_capture_on_commit_callbacks(execute=True):
        assert metric_scores_enqueue_for_video(video_id=video.id) == 0


def test_pending_videos_are_not_enqueued_and_the_switch_turns_it_off(make_video, cheap_metrics, settings):
    pending = make_video(pan_frames(128, 80, 2, 8), status="pending")
    assert metric_scores_enqueue_for_video(video_id=pending.id) == 0
    ready = make_video(pan_frames(128, 80, 2, 8))
    settings.METRICS_ENQUEUE_ON_READY = False
    assert metric_scores_enqueue_for_video(video_id=ready.id) == 0


def test_running_a_task_twice_stores_one_score_per_metric_and_version(make_video, cheap_metrics):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16, tags={"motion": "fast"})
    metrics_compute_batch.apply(args=([video.id],), throw=True)
    first = {s.metric: (s.pk, s.value, s.computed_at) for s in MetricScore.objects.filter(video=video)}
    metrics_compute_batch.apply(args=([video.id],), throw=True)
    second = {s.metric: (s.pk, s.value, s.computed_at) for s in MetricScore.objects.filter(video=video)}
    assert first == second and set(first) == set(CHEAP)


def test_the_database_refuses_a_second_score_for_the_same_version(make_video, cheap_metrics):
    from django.db import IntegrityError

    video = make_video(pan_frames(128, 80, 2, 8))
    MetricScore.objects.create(video=video, metric="flow_score", version="1+farneback", value=1.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        MetricScore.objects.create(video=video, metric="flow_score", version="1+farneback", value=2.0)


def test_a_corrupt_file_is_a_stored_failure_that_blocks_nothing_else(make_video, media_video, cheap_metrics, settings):
    good = make_video(pan_frames(128, 80, 2, 16), fps=16)
    bad = make_video(pan_frames(128, 80, 2, 16), fps=16)
    (settings.MEDIA_ROOT / bad.browser).write_bytes(b"\x00garbage" * 1000)
    missing = make_video(browser="videos/never-written.mp4")

    report = metrics_compute_batch.apply(args=([bad.id, good.id, missing.id],), throw=True).result

    assert report["videos"] == 3
    failed = MetricScore.objects.filter(video=bad)
    assert failed.count() == 3 and all(s.status == "failed" and s.value is None for s in failed)
    assert all(s.error.startswith("undecodable video") for s in failed)
    assert all(s.error == "video file not found" for s in MetricScore.objects.filter(video=missing))
    assert {s.status for s in MetricScore.objects.filter(video=good)} == {"ok"}
    # permanent: not retried by a rerun, only on request
    metrics_compute_batch.apply(args=([bad.id],), throw=True)
    assert MetricScore.objects.filter(video=bad).count() == 3
    (settings.MEDIA_ROOT / bad.browser).unlink()
    media_video(bad.browser.split("/")[-1], pan_frames(128, 80, 2, 16), 16)
    metrics_compute_batch.apply(args=([bad.id],), kwargs={"retry_failed": True}, throw=True)
    assert {s.status for s in MetricScore.objects.filter(video=bad)} == {"ok"}


def test_a_crash_mid_transaction_stores_nothing_and_a_rerun_stores_all(make_video, cheap_metrics, monkeypatch):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16)
    real = services._score_write
    calls = {"n": 0}

    def crash_after_two(**kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(services, "_score_write", crash_after_two)
    with pytest.raises(RuntimeError, match="worker killed"):
        metric_scores_compute(video_ids=[video.id])
    assert calls["n"] == 3  # two scores were written inside the transaction before the crash
    assert not MetricScore.objects.filter(video=video).exists()

    monkeypatch.setattr(services, "_score_write", real)
    report = metric_scores_compute(video_ids=[video.id])
    assert report["stored"] == 3
    assert MetricScore.objects.filter(video=video).count() == 3


def test_a_crash_in_a_batch_leaves_finished_videos_whole_and_the_rest_untouched(make_video, cheap_metrics, monkeypatch):
    first = make_video(pan_frames(128, 80, 2, 16), fps=16)
    second = make_video(pan_frames(128, 80, 1, 16), fps=16)
    real = services._store_scores

    def crash_on_second(**kwargs):
        if kwargs["video_id"] == second.id:
            raise OperationalError("connection lost")
        return real(**kwargs)

    monkeypatch.setattr(services, "_store_scores", crash_on_second)
    with pytest.raises(OperationalError):
        metric_scores_compute(video_ids=[first.id, second.id])
    assert MetricScore.objects.filter(video=first).count() == 3
    assert not MetricScore.objects.filter(video=second).exists()
    monkeypatch.setattr(services, "_store_scores", real)
    assert metric_scores_compute(video_ids=[first.id, second.id])["videos"] == 1  # only what is missing
    assert MetricScore.objects.filter(video=second).count() == 3


def test_transient_failures_are_retried(make_video, cheap_metrics, monkeypatch):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16)
    from metrics import tasks

    real = tasks.metric_scores_compute
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("database restarting")
        return real(**kwargs)

    monkeypatch.setattr(tasks, "metric_scores_compute", flaky)
    metrics_compute_batch.apply(args=([video.id],), throw=True)
    assert calls["n"] == 2
    assert MetricScore.objects.filter(video=video, status="ok").count() == 3


def test_after_the_last_retry_the_reason_is_stored(make_video, cheap_metrics, monkeypatch):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16)
    from metrics import tasks

    def always(**kwargs):
        raise OperationalError("database gone")

    monkeypatch.setattr(tasks, "metric_scores_compute", always)
    monkeypatch.setattr(metrics_compute_batch, "max_retries", 2)
    metrics_compute_batch.apply(args=([video.id],))
    failed = MetricScore.objects.filter(video=video)
    assert failed.count() == 3
    assert all(s.status == "failed" and "gave up after 2 retries" in s.error for s in failed)


def test_task_options():
    assert metrics_compute_batch.acks_late is True
    assert metrics_compute_batch.reject_on_worker_lost is True
    assert (
        metrics_compute_batch.soft_time_limit
        and metrics_compute_batch.time_limit > metrics_compute_batch.soft_time_limit
    )
    assert metrics_compute_batch.max_retries >= 3
    assert metrics_compute_batch.name.startswith("metrics.tasks.")


def test_force_recomputes_computed_scores_but_never_touches_external_ones(make_video, cheap_metrics):
    video = make_video(pan_frames(128, 80, 2, 16), fps=16)
    metric_scores_compute(video_ids=[video.id])
    MetricScore.objects.filter(video=video, metric="flow_score").update(value=99.0)
    MetricScore.objects.create(video=video, metric="flow_score", version="evalcrafter", value=7.0, source="external")
    metric_scores_compute(video_ids=[video.id], force=True)
    assert MetricScore.objects.get(video=video, metric="flow_score", source="computed").value == pytest.approx(
        2, rel=0.1
    )
    assert MetricScore.objects.get(video=video, version="evalcrafter").value == 7.0


def test_clip_not_configured_stores_nothing_for_clip_and_reports_it(make_video, settings, tmp_path):
    from metrics.clip_backend import clear_cache
    from metrics.selectors import metric_status_for_project

    clear_cache()
    settings.METRICS_ENABLED = ["clip_score", "temporal_flickering"]
    settings.CLIP_PRETRAINED = "openai"
    settings.CLIP_CHECKPOINT = ""
    settings.CLIP_CACHE_DIR = str(tmp_path / "empty")
    video = make_video(pan_frames(128, 80, 2, 8))
    report = metrics_compute_batch.apply(args=([video.id],), throw=True).result
    assert "CLIP_PRETRAINED" in report["not_configured"]["clip_score"]
    assert set(values(video)) == {"temporal_flickering"}
    state = MetricBackendStatus.objects.get(backend="clip")
    assert not state.configured and state.setting == "CLIP_PRETRAINED"
    status = {row["name"]: row for row in metric_status_for_project(project_id=video.project_id)}
    assert status["clip_score"]["state"] == "not configured" and status["clip_score"]["pending"] == 1
    assert "CLIP_PRETRAINED" in status["clip_score"]["not_configured_reason"]
    assert status["temporal_flickering"]["state"] == "complete"
