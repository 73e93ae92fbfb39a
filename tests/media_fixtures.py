"""Tiny real media files for tests, made with the ffmpeg CLI through ffmpeg-python.

Each helper writes one file (a fraction of a second of lavfi ``testsrc2``, a few KiB) and
returns its path. They use ffmpeg directly, not ``annotation.media``, so that the code under
test never builds its own fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import ffmpeg
import numpy as np

Size = tuple[int, int]


def _source(seconds: float, size: Size, fps: int) -> ffmpeg.nodes.FilterableStream:
    width, height = size
    # testsrc2 (4:2:0) rounds odd sizes down to even ones: render one pixel larger, go 4:4:4
    # (a 4:2:0 crop would round again), then crop.
    even_w, even_h = width + width % 2, height + height % 2
    video = ffmpeg.input(f"testsrc2=size={even_w}x{even_h}:rate={fps}:duration={seconds}", f="lavfi")
    if (even_w, even_h) != (width, height):
        video = video.filter("format", "yuv444p").filter("crop", width, height, 0, 0)
    return video


def _write(stream: ffmpeg.nodes.OutputStream) -> None:
    stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error").overwrite_output().run(quiet=True)


def _h264(path: Path, *, seconds: float, size: Size, fps: int, pix_fmt: str, **extra: object) -> Path:
    path = Path(path)
    video = _source(seconds, size, fps)
    _write(ffmpeg.output(video, str(path), vcodec="libx264", preset="ultrafast", pix_fmt=pix_fmt, **extra))
    return path


def make_h264_mp4(
    path: Path,
    *,
    seconds: float = 1,
    size: Size = (160, 96),
    fps: int = 24,
    faststart: bool = True,
    audio: bool = False,
) -> Path:
    """H.264 yuv420p MP4: the one kind browsers play as is. ``faststart=False`` leaves the
    moov atom after mdat (ffmpeg's default); ``audio=True`` adds an AAC sine track."""
    path = Path(path)
    streams = [_source(seconds, size, fps)]
    extra: dict[str, object] = {"movflags": "+faststart"} if faststart else {}
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi"))
        extra["acodec"] = "aac"
    _write(ffmpeg.output(*streams, str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", **extra))
    return path


def make_vp9_webm(path: Path, *, seconds: float = 1, size: Size = (160, 96), fps: int = 24) -> Path:
    """VP9 in WebM (Chromium plays it, but the house rule is MP4/H.264 only)."""
    path = Path(path)
    video = _source(seconds, size, fps)
    _write(
        ffmpeg.output(
            video, str(path), vcodec="libvpx-vp9", deadline="realtime", **{"cpu-used": 8, "b:v": "200k"}
        )
    )
    return path


def make_yuv444_mp4(path: Path, *, seconds: float = 1, size: Size = (160, 96), fps: int = 24) -> Path:
    """H.264 High 4:4:4 in MP4: the right codec, a pixel format most browsers refuse."""
    return _h264(path, seconds=seconds, size=size, fps=fps, pix_fmt="yuv444p", movflags="+faststart")


def make_odd_size_mp4(path: Path, *, size: Size = (161, 97), seconds: float = 1, fps: int = 24) -> Path:
    """H.264 MP4 with an odd width and height. 4:2:0 cannot code odd sizes, so it is yuv444p:
    needs_transcode reports both the odd size and the pixel format."""
    return _h264(path, seconds=seconds, size=size, fps=fps, pix_fmt="yuv444p", movflags="+faststart")


def make_mpeg4_mp4(path: Path, *, seconds: float = 1, size: Size = (160, 96), fps: int = 24) -> Path:
    """MPEG-4 part 2 (the old "DivX" codec) in MP4."""
    path = Path(path)
    _write(ffmpeg.output(_source(seconds, size, fps), str(path), vcodec="mpeg4", pix_fmt="yuv420p"))
    return path


def make_rotated_mp4(path: Path, *, degrees: int = 90, size: Size = (160, 96)) -> Path:
    """H.264 MP4 whose display matrix says "rotate by ``degrees``" (a phone video, upright).

    Uses the ``rotate`` stream tag, which ffmpeg 5 turns into a display matrix on stream copy;
    newer ffmpeg may ignore it (callers should check ``probe(...).rotation``)."""
    path = Path(path)
    plain = path.with_name(f"plain-{path.name}")
    make_h264_mp4(plain, size=size)
    _write(ffmpeg.output(ffmpeg.input(str(plain)), str(path), c="copy", **{"metadata:s:v:0": f"rotate={degrees}"}))
    plain.unlink()
    return path


def make_audio_only(path: Path, *, seconds: float = 1) -> Path:
    """An AAC-in-MP4 (.m4a) file: valid media, but no video stream."""
    path = Path(path)
    _write(ffmpeg.output(ffmpeg.input(f"sine=duration={seconds}", f="lavfi"), str(path), acodec="aac", f="mp4"))
    return path


def make_corrupt_file(path: Path, *, kind: str = "random") -> Path:
    """A file named like a video that is not one.

    ``kind="random"``: 4 KiB of seeded random bytes. ``kind="truncated"``: the first half of a
    real MP4 whose moov atom was at the end, so the index is gone ("moov atom not found").
    """
    path = Path(path)
    if kind == "random":
        path.write_bytes(np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        whole = path.with_name(f"whole-{path.name}")
        make_h264_mp4(whole, faststart=False)
        data = whole.read_bytes()
        whole.unlink()
        path.write_bytes(data[: len(data) // 2])
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


def make_text_file(path: Path, *, lines: int = 200) -> Path:
    """Plain text. With a .txt name and enough lines ffmpeg's tty demuxer "reads" it as an
    ANSI-art video, so this also exercises the probe's not-a-video guard."""
    path = Path(path)
    path.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(lines)))
    return path


def make_zero_duration(path: Path) -> Path:
    """A one-frame raw H.264 elementary stream (``.h264``): a real, decodable video stream
    whose container records no duration at all (ffprobe: duration N/A).

    ffmpeg cannot write an MP4 whose video track lasts zero seconds: with zero frames it
    writes no track at all (that file is covered by "no video stream"), with one frame the
    track lasts 1/fps. The raw stream is the realistic "duration missing" case instead.
    """
    path = Path(path)
    _write(
        ffmpeg.output(
            _source(1, (64, 64), 24), str(path), vcodec="libx264", preset="ultrafast",
            pix_fmt="yuv420p", vframes=1, f="h264",
        )
    )
    return path


def file_names(folder: Path) -> list[str]:
    """Every name in ``folder`` (hidden temporary files included), sorted."""
    return sorted(os.listdir(folder))
