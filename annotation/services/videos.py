"""The media pipeline for one video: keep the original, probe, transcode if needed, poster.

Files are content-addressed (``originals/ab/<sha256>.<ext>``, ``browser/ab/<sha256>.mp4``,
``posters/ab/<sha256>.jpg``) under MEDIA_ROOT or, with ``MEDIA_STORAGE=s3``, as keys in the bucket
(:mod:`annotation.storage`), so work done once is reused and a rerun after a crash only does what
is missing. A failure marks the video failed with ffmpeg's reason and touches nothing else; a
storage or network failure is retried.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction

from annotation import media
from annotation.manifest import check_import_url, is_url, resolve_import_path
from annotation.models import Video
from annotation.storage import media_workspace
from annotation.url_fetch import UrlRefused, open_import_url
from config.tasks import enqueue_many_on_commit

logger = logging.getLogger(__name__)


class TransientMediaError(Exception):
    """Worth retrying (network, disk): the task retries with backoff."""


def video_process_enqueue(*, video_ids: list[int]) -> None:
    """Queue media work for these videos once the current transaction commits."""
    from annotation.tasks import video_process_task  # noqa: PLC0415 (tasks import services)

    enqueue_many_on_commit(video_process_task, [(vid,) for vid in video_ids])


def video_process(*, video_id: int) -> Video | None:
    """Bring one pending video to ready or failed. Idempotent: a finished video is left as is."""
    video = Video.objects.select_related("prompt").filter(pk=video_id).first()
    if video is None or video.status != Video.STATUS_PENDING:
        return video
    try:
        _process_files(video)
    except media.MediaError as exc:
        return _video_fail(video, str(exc))
    except TransientMediaError:
        raise
    except OSError as exc:
        raise TransientMediaError(f"{exc.__class__.__name__}: {exc}") from exc
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        if locked.status != Video.STATUS_PENDING:
            return locked
        for name in (
            "original", "browser", "poster", "sha256", "size_bytes", "duration", "fps",
            "width", "height", "codec", "pix_fmt", "transcoded",
        ):
            setattr(locked, name, getattr(video, name))
        locked.status = Video.STATUS_READY
        locked.error = ""
        locked.save()
        _enqueue_metrics(locked.pk)
    return locked


def _enqueue_metrics(video_id: int) -> None:
    try:
        from metrics.services import metric_scores_enqueue_for_video  # noqa: PLC0415
    except ImportError:  # metrics app without its services (minimal installs)
        return
    metric_scores_enqueue_for_video(video_id=video_id)


def _video_fail(video: Video, reason: str) -> Video:
    reason = reason.strip() or "unknown media error"
    Video.objects.filter(pk=video.pk, status=Video.STATUS_PENDING).update(
        status=Video.STATUS_FAILED, error=reason[:4000]
    )
    video.status, video.error = Video.STATUS_FAILED, reason
    logger.info("video %s failed: %s", video.pk, reason)
    return video


def _process_files(video: Video) -> None:
    """Keep the original, probe, make the browser copy and poster, and fill ``video``'s fields.

    Works through a :class:`~annotation.storage.MediaWorkspace`: in place under MEDIA_ROOT, or in
    s3 mode in a scratch folder whose outputs are uploaded (and which is removed afterwards).
    """
    with media_workspace() as ws:
        source = _local_source(video, ws.root)
        size = source.stat().st_size
        if size == 0:
            raise media.MediaError("the file is empty")
        if size > settings.MEDIA_MAX_VIDEO_BYTES:
            raise media.MediaError(f"the file is larger than MEDIA_MAX_VIDEO_BYTES ({size} bytes)")
        sha = media.sha256_file(source)
        ext = (source.suffix.lower() or ".bin")[:8]
        original = f"originals/{sha[:2]}/{sha}{ext}"
        original_file = ws.keep(source, original)
        info = media.probe(original_file)
        reason = media.needs_transcode(info)
        browser, browser_file = original, original_file
        if reason:
            browser = f"browser/{sha[:2]}/{sha}.mp4"
            if not ws.has(browser):
                media.transcode(original_file, ws.path(browser), max_height=settings.MEDIA_TRANSCODE_MAX_HEIGHT)
                ws.publish(browser)
            browser_file = ws.local(browser)
            info_browser = media.probe(browser_file)
            video.transcoded = True
        else:
            info_browser = info
            # A copy without metadata also when the original carries tags that may name its generator.
            if media.needs_faststart(original_file) or info.metadata_tags:
                browser = f"browser/{sha[:2]}/{sha}.mp4"
                if not ws.has(browser):
                    media.remux_faststart(original_file, ws.path(browser))
                    ws.publish(browser)
                browser_file = ws.local(browser)
                video.transcoded = True
        poster = f"posters/{sha[:2]}/{sha}.jpg"
        if not ws.has(poster):
            media.make_poster(browser_file, ws.path(poster))
            ws.publish(poster)
    video.original, video.browser, video.poster = original, browser, poster
    video.sha256, video.size_bytes = sha, size
    video.duration, video.fps = info.duration, info.fps
    # Width and height are what the browser plays (a transcode may round to even sizes).
    video.width, video.height = info_browser.display_size
    video.codec, video.pix_fmt = info.codec, info.pix_fmt


def _local_source(video: Video, scratch: Path) -> Path:
    """The source file on this machine; URL sources are downloaded into ``scratch``/incoming
    (MEDIA_ROOT in filesystem mode, the run's scratch folder in s3 mode)."""
    if is_url(video.source):
        return _download(video.source, scratch)
    path, reason = resolve_import_path(video.source, list(settings.IMPORT_ROOTS))
    if path is None:
        raise media.MediaError(f"source file unavailable: {reason}")
    return path


def _download(url: str, root: Path) -> Path:
    reason = check_import_url(
        url, enabled=settings.IMPORT_URLS_ENABLED, allowed_hosts=settings.IMPORT_URL_ALLOWED_HOSTS
    )
    if reason:
        raise media.MediaError(reason)
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=incoming, suffix=Path(urlparse(url).path).suffix[:8])
    limit = settings.MEDIA_MAX_VIDEO_BYTES
    try:
        # Public addresses only, checked at every connect and redirect (annotation.url_fetch).
        with os.fdopen(fd, "wb") as out, open_import_url(
            url, allowed_hosts=settings.IMPORT_URL_ALLOWED_HOSTS, timeout=30
        ) as response:
            received = 0
            while chunk := response.read(1 << 20):
                received += len(chunk)
                if received > limit:
                    raise media.MediaError(f"download larger than MEDIA_MAX_VIDEO_BYTES ({limit} bytes)")
                out.write(chunk)
    except OSError as exc:
        os.unlink(tmp)
        raise TransientMediaError(f"download failed: {exc}") from exc
    except UrlRefused as exc:
        os.unlink(tmp)
        raise media.MediaError(str(exc)) from exc
    except media.MediaError:
        os.unlink(tmp)
        raise
    return Path(tmp)
