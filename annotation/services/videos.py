"""The media pipeline for one video: keep the original, probe, transcode if needed, poster.

Files are content-addressed under MEDIA_ROOT (``originals/ab/<sha256>.<ext>``,
``browser/ab/<sha256>.mp4``, ``posters/ab/<sha256>.jpg``), so work done once is reused and a
rerun after a crash only does what is missing. A failure marks the video failed with
ffmpeg's reason and touches nothing else.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction

from annotation import media
from annotation.manifest import check_import_url, is_url, resolve_import_path
from annotation.models import Video
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


def _media_root() -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _process_files(video: Video) -> None:
    root = _media_root()
    source = _local_source(video, root)
    size = source.stat().st_size
    if size == 0:
        raise media.MediaError("the file is empty")
    if size > settings.MEDIA_MAX_VIDEO_BYTES:
        raise media.MediaError(f"the file is larger than MEDIA_MAX_VIDEO_BYTES ({size} bytes)")
    sha = media.sha256_file(source)
    ext = (source.suffix.lower() or ".bin")[:8]
    original = Path("originals") / sha[:2] / f"{sha}{ext}"
    _keep_copy(source, root / original)
    info = media.probe(root / original)
    reason = media.needs_transcode(info)
    browser = original
    if reason:
        browser = Path("browser") / sha[:2] / f"{sha}.mp4"
        if not (root / browser).is_file():
            (root / browser).parent.mkdir(parents=True, exist_ok=True)
            media.transcode(root / original, root / browser, max_height=settings.MEDIA_TRANSCODE_MAX_HEIGHT)
        info_browser = media.probe(root / browser)
        video.transcoded = True
    else:
        info_browser = info
        if media.needs_faststart(root / original):
            browser = Path("browser") / sha[:2] / f"{sha}.mp4"
            if not (root / browser).is_file():
                (root / browser).parent.mkdir(parents=True, exist_ok=True)
                media.remux_faststart(root / original, root / browser)
            video.transcoded = True
    poster = Path("posters") / sha[:2] / f"{sha}.jpg"
    if not (root / poster).is_file():
        (root / poster).parent.mkdir(parents=True, exist_ok=True)
        media.make_poster(root / browser, root / poster)
    video.original, video.browser, video.poster = str(original), str(browser), str(poster)
    video.sha256, video.size_bytes = sha, size
    video.duration, video.fps = info.duration, info.fps
    # Width and height are what the browser plays (a transcode may round to even sizes).
    video.width, video.height = info_browser.display_size
    video.codec, video.pix_fmt = info.codec, info.pix_fmt


def _local_source(video: Video, root: Path) -> Path:
    """The source file on this machine; URL sources are downloaded into MEDIA_ROOT/incoming."""
    if is_url(video.source):
        return _download(video.source, root)
    path, reason = resolve_import_path(video.source, list(settings.IMPORT_ROOTS))
    if path is None:
        raise media.MediaError(f"source file unavailable: {reason}")
    return path


def _keep_copy(source: Path, dest: Path) -> None:
    """Copy (or hard-link) the original into MEDIA_ROOT atomically, once."""
    if dest.is_file() and dest.stat().st_size == source.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    try:
        try:
            os.unlink(tmp)
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download(url: str, root: Path) -> Path:
    reason = check_import_url(
        url, enabled=settings.IMPORT_URLS_ENABLED, allowed_hosts=settings.IMPORT_URL_ALLOWED_HOSTS
    )
    if reason:
        raise media.MediaError(reason)
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise TransientMediaError(f"cannot resolve {host}: {exc}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise media.MediaError(f"refusing to fetch from {host}: it resolves to a non-public address")
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=incoming, suffix=Path(urlparse(url).path).suffix[:8])
    limit = settings.MEDIA_MAX_VIDEO_BYTES
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            received = 0
            while chunk := response.read(1 << 20):
                received += len(chunk)
                if received > limit:
                    raise media.MediaError(f"download larger than MEDIA_MAX_VIDEO_BYTES ({limit} bytes)")
                out.write(chunk)
    except OSError as exc:
        os.unlink(tmp)
        raise TransientMediaError(f"download failed: {exc}") from exc
    except media.MediaError:
        os.unlink(tmp)
        raise
    return Path(tmp)
