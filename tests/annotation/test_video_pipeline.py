"""The media task on real ffmpeg-made files: keep, transcode, poster, fail with a reason."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import pytest
from django.conf import settings
from PIL import Image

from annotation.models import Video
from annotation.services.videos import video_process
from tests import media_fixtures as mf
from tests.factories import PromptFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _pending(path: Path) -> Video:
    return VideoFactory(prompt=PromptFactory(), source=str(path), status=Video.STATUS_PENDING)


def _root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _stream(path: Path) -> dict:
    info = ffmpeg.probe(str(path))
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def test_h264_mp4_is_kept_as_is():
    src = mf.make_h264_mp4(Path(settings.IMPORT_ROOTS[0]) / "ok.mp4")
    video = video_process(video_id=_pending(src).pk)
    video.refresh_from_db()
    assert video.status == Video.STATUS_READY, video.error
    assert video.browser == video.original and not video.transcoded
    assert (_root() / video.original).read_bytes() == src.read_bytes()
    assert (video.codec, video.pix_fmt, video.width, video.height) == ("h264", "yuv420p", 160, 96)
    assert video.fps == pytest.approx(24, abs=0.01)
    assert video.duration == pytest.approx(1.0, abs=0.1)
    assert len(video.sha256) == 64
    with Image.open(_root() / video.poster) as poster:
        assert poster.format == "JPEG" and poster.size[0] / poster.size[1] == pytest.approx(160 / 96, rel=0.05)


@pytest.mark.parametrize(
    ("maker", "name"),
    [(mf.make_vp9_webm, "v.webm"), (mf.make_yuv444_mp4, "v444.mp4"), (mf.make_odd_size_mp4, "odd.mp4")],
)
def test_unplayable_originals_are_transcoded_and_kept(maker, name):
    src = maker(Path(settings.IMPORT_ROOTS[0]) / name)
    video = video_process(video_id=_pending(src).pk)
    video.refresh_from_db()
    assert video.status == Video.STATUS_READY, video.error
    assert video.transcoded and video.browser != video.original
    assert (_root() / video.original).read_bytes() == src.read_bytes()  # the original is kept
    stream = _stream(_root() / video.browser)
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
    assert stream["width"] % 2 == 0 and stream["height"] % 2 == 0
    assert (video.width, video.height) == (stream["width"], stream["height"])
    data = (_root() / video.browser).read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "transcode must be +faststart"


@pytest.mark.parametrize("maker", [mf.make_corrupt_file, mf.make_text_file])
def test_undecodable_files_fail_with_a_reason_and_touch_nothing_else(maker):
    good = video_process(video_id=_pending(mf.make_h264_mp4(Path(settings.IMPORT_ROOTS[0]) / "good.mp4")).pk)
    src = maker(Path(settings.IMPORT_ROOTS[0]) / "bad.mp4")
    bad = _pending(src)
    video_process(video_id=bad.pk)
    bad.refresh_from_db()
    assert bad.status == Video.STATUS_FAILED
    assert bad.error.strip()
    assert not bad.browser and not bad.poster
    good.refresh_from_db()
    assert good.status == Video.STATUS_READY


def test_missing_source_fails_with_reason():
    video = _pending(Path(settings.IMPORT_ROOTS[0]) / "gone.mp4")
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.STATUS_FAILED and "file not found" in video.error


def test_processing_is_idempotent():
    src = mf.make_h264_mp4(Path(settings.IMPORT_ROOTS[0]) / "ok.mp4")
    video = _pending(src)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    first = (video.updated_at, video.browser, video.poster)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.updated_at, video.browser, video.poster) == first
