"""Media primitives over file paths: probe, decide, transcode, remux, poster, hash.

Pure functions: no Django models, no database, no settings; every default is an argument. All
ffmpeg/ffprobe calls go through ffmpeg-python with captured output (never a shell), with
``-nostdin`` so that a worker's stdin is never read.

Errors follow one rule, which the media task relies on:

- ``MediaError`` means *this file* is bad or cannot be made playable (not a video, corrupt,
  zero duration, ffmpeg refused it). Its message is a human-readable reason that ends with
  ffmpeg's own words, e.g. ``"not a video: Invalid data found when processing input"``.
  Retrying will not help; mark the video failed with ``str(exc)``.
- ``OSError`` (ffmpeg not installed, disk full, permissions) is an environment problem and is
  left to propagate, so the caller can retry.

The usual sequence for one upload::

    info = probe(src)
    if needs_transcode(info):          # not H.264/yuv420p/even-sized MP4
        transcode(src, browser_mp4)
    elif needs_faststart(src):         # playable, but the moov atom is at the end
        remux_faststart(src, browser_mp4)
    make_poster(browser_mp4 or src, poster_jpg)

Outputs are written to a hidden temporary file next to the destination and renamed into place
only on success (``atomic_path``), so a crash or a failure never leaves a partial file under
the final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg
from PIL import Image

PathLike = str | os.PathLike[str]

#: ffprobe's format_name for the ISO-BMFF family (.mp4, .mov, .m4v, .3gp, ...).
MP4_FAMILY = "mov,mp4,m4a,3gp,3g2,mj2"
#: Audio codecs Chromium plays inside MP4; anything else in the file forces a transcode.
BROWSER_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "flac"})
#: Demuxers that "succeed" on things that are not videos: the tty demuxer reads any longish
#: .txt/.nfo file as ANSI art, image2 and *_pipe read still images.
_NOT_VIDEO_FORMATS = {"tty": "a text file", "image2": "a still image"}
_REASON_MAX_CHARS = 500
#: Tags that only describe the file's structure, with the values muxers write by themselves.
#: Any other tag (or one of these with another value) may carry a generator's name.
_STRUCTURAL_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "language", "vendor_id"})
_DEFAULT_HANDLERS = frozenset({"VideoHandler", "SoundHandler", "Core Media Video", "Core Media Audio"})
_FFMPEG_ENCODER = re.compile(r"Lav[fc]\d+(\.\d+)*( [\w-]+)?")  # "Lavf59.27.100", "Lavc59.37.100 libx264"


class MediaError(Exception):
    """The file is not a usable video; ``reason`` (also ``str(exc)``) says why, in ffmpeg's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What ffprobe says about the first real video stream (cover art is ignored).

    ``width``/``height`` are the coded size; ``display_size`` applies the sample aspect
    ratio and the rotation a player would apply. ``nb_frames`` is None when the container
    does not record it (WebM, MPEG-TS).
    """

    duration: float
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    container: str
    has_audio: bool
    size_bytes: int
    nb_frames: int | None
    audio_codec: str | None = None
    rotation: int = 0
    sample_aspect_ratio: float = 1.0
    #: Container and stream tags that could say where the file came from (title, comment,
    #: artist, a custom encoder or handler name...): see ``identifying_tags``.
    metadata_tags: tuple[str, ...] = ()

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown: square pixels, rotation applied."""
        width = max(1, round(self.width * self.sample_aspect_ratio))
        if abs(self.rotation) % 180 == 90:
            return self.height, width
        return width, self.height


# --------------------------------------------------------------------------- running ffmpeg


def _clean_stderr(stderr: bytes | None, paths: tuple[PathLike, ...] = ()) -> str:
    """The last meaningful lines of ffmpeg's stderr, without paths and pointer addresses."""
    text = (stderr or b"").decode("utf-8", errors="replace")
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        for path in paths:
            # "/abs/path/x.mp4: Invalid data ..." -> "Invalid data ..."; elsewhere keep the name.
            line = line.replace(f"{os.fspath(path)}: ", "").replace(os.fspath(path), Path(path).name)
        line = re.sub(r" @ 0x[0-9a-f]+\]", "]", line)
        if line and line not in lines:
            lines.append(line)
    if len(lines) > 1:  # generic trailers say nothing the lines before them don't
        lines = [ln for ln in lines if ln not in {"Conversion failed!", "Exiting normally, received signal 2."}]
    reason = " | ".join(lines[-3:]) or "ffmpeg failed without a message"
    if len(reason) > _REASON_MAX_CHARS:
        reason = "…" + reason[-(_REASON_MAX_CHARS - 1) :]
    return reason


def run_ffmpeg(
    stream: Any,
    *,
    input_bytes: bytes | None = None,
    timeout: float | None = None,
    what: str = "ffmpeg failed",
    paths: tuple[PathLike, ...] = (),
) -> bytes:
    """Run an ffmpeg-python output node and return its stdout.

    stdout and stderr are captured (stdin is fed ``input_bytes`` when given); ffmpeg logs
    errors only. A non-zero exit or a timeout raises ``MediaError(f"{what}: {reason}")``,
    where reason is ffmpeg's stderr cleaned by ``_clean_stderr`` (``paths`` are shortened to
    their names). A missing ffmpeg binary raises ``FileNotFoundError`` (an ``OSError``).
    """
    stream = stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    process = stream.run_async(pipe_stdin=input_bytes is not None, pipe_stdout=True, pipe_stderr=True)
    try:
        out, err = process.communicate(input=input_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise MediaError(f"{what}: ffmpeg timed out after {timeout:g} s") from None
    if process.returncode < 0:  # killed (e.g. by the OOM killer): say so, stderr may be empty
        raise MediaError(f"{what}: ffmpeg was killed by signal {-process.returncode}")
    if process.returncode != 0:
        raise MediaError(f"{what}: {_clean_stderr(err, paths)}")
    return out


@contextmanager
def atomic_path(dst: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; rename it onto ``dst`` when the block succeeds.

    The parent folder is created if missing. On any exception the temporary file is removed
    and ``dst`` is left untouched (a previous file there survives). The temporary name is
    hidden (leading dot) and ends in ``.part``, so the muxer must be chosen explicitly with
    ``format=...``, never from the extension.
    """
    final = Path(dst)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise MediaError("the output is empty")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- probing


def _fraction(value: Any) -> Fraction | None:
    """ffprobe's "num/den", "num:den" or plain number as a positive Fraction; None for 0/0, junk."""
    try:
        text = str(value).replace(":", "/")
        if "/" in text:
            num, den = text.split("/", 1)
            result = Fraction(int(num), int(den)) if int(den) else None
        else:
            result = Fraction(text)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return result if result and result > 0 else None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and result not in (float("inf"), float("-inf")) else None


def _rotation(stream: dict[str, Any]) -> int:
    """Rotation in degrees from the display matrix side data (or the legacy ``rotate`` tag)."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(_float(side["rotation"]) or 0)
    return int(_float((stream.get("tags") or {}).get("rotate")) or 0)


def identifying_tags(data: dict[str, Any]) -> tuple[str, ...]:
    """Names (``format:title``, ``stream0:handler_name``...) of the tags in ffprobe's output
    ``data`` that are not structural: they could name the generator, so a file carrying any
    is not served as is (raters are blind); its browser copy is written without metadata."""
    found: list[str] = []
    sources = [("format", (data.get("format") or {}).get("tags") or {})]
    sources += [(f"stream{i}", s.get("tags") or {}) for i, s in enumerate(data.get("streams") or [])]
    sources += [(f"chapter{i}", c.get("tags") or {}) for i, c in enumerate(data.get("chapters") or [])]
    for where, tags in sources:
        for key, value in tags.items():
            name = str(key).lower()
            if name in _STRUCTURAL_TAGS or name == "creation_time":
                continue
            if name == "handler_name" and str(value) in _DEFAULT_HANDLERS:
                continue
            if name == "encoder" and _FFMPEG_ENCODER.fullmatch(str(value)):
                continue
            found.append(f"{where}:{name}")
    return tuple(found)


def probe(path: PathLike) -> ProbeResult:
    """Describe the video at ``path`` with ffprobe.

    Raises MediaError when ffprobe cannot read the file ("not a video: <ffprobe's reason>"),
    when it is a text file or a still image that a demuxer happens to accept, when it has no
    video stream, an unknown codec, zero dimensions, an unknown frame rate, or a zero or
    missing duration (raw elementary streams such as ``.h264`` have none; decoding to count
    frames is deliberately not attempted). A missing file raises FileNotFoundError.
    """
    size_bytes = os.stat(path).st_size  # a missing file is FileNotFoundError, not a bad video
    try:
        data = ffmpeg.probe(os.fspath(path), v="error", show_chapters=None)
    except ffmpeg.Error as exc:
        raise MediaError(f"not a video: {_clean_stderr(exc.stderr, (path,))}") from None
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    container = str(fmt.get("format_name") or "")
    if container in _NOT_VIDEO_FORMATS or container.endswith("_pipe"):
        kind = _NOT_VIDEO_FORMATS.get(container, "a still image")
        raise MediaError(f"not a video: ffmpeg reads it as {kind} ({container})")
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        found = ", ".join(sorted({str(s.get("codec_type")) for s in streams})) or "no streams at all"
        raise MediaError(f"not a video: no video stream ({found})")
    video = videos[0]
    codec = str(video.get("codec_name") or "")
    if not codec:
        raise MediaError("not a video: ffmpeg does not know the video codec")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError(f"zero dimensions ({width}x{height})")
    rate = _fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate"))
    if rate is None:
        raise MediaError("unknown frame rate")
    duration = _float(video.get("duration")) or _float(fmt.get("duration"))
    if not duration or duration <= 0:
        raise MediaError("zero duration")
    nb_frames = int(video["nb_frames"]) if str(video.get("nb_frames", "")).isdigit() else None
    sar = _fraction(video.get("sample_aspect_ratio"))
    return ProbeResult(
        duration=duration,
        fps=float(rate),
        width=width,
        height=height,
        codec=codec,
        pix_fmt=str(video.get("pix_fmt") or ""),
        container=container,
        has_audio=bool(audios),
        size_bytes=size_bytes,
        nb_frames=nb_frames,
        audio_codec=(str(audios[0].get("codec_name") or "") or None) if audios else None,
        rotation=_rotation(video),
        sample_aspect_ratio=float(sar) if sar else 1.0,
        metadata_tags=identifying_tags(data),
    )


# --------------------------------------------------------------------------- decisions


def needs_transcode(info: ProbeResult) -> str | None:
    """Why a browser cannot play this file as is, or None when it can.

    Playable as is only when all hold: MP4/MOV container, H.264, yuv420p, even width and
    height, and no audio track in a codec browsers cannot play in MP4. The reason names every
    failed condition, joined by "; " (e.g. "container matroska,webm is not MP4; codec vp9 is
    not H.264"). A playable file may still need ``remux_faststart`` (see ``needs_faststart``).
    """
    reasons: list[str] = []
    if info.container != MP4_FAMILY:
        reasons.append(f"container {info.container} is not MP4")
    if info.codec != "h264":
        reasons.append(f"codec {info.codec} is not H.264")
    if info.pix_fmt != "yuv420p":
        reasons.append(f"pixel format {info.pix_fmt or 'unknown'} is not yuv420p")
    if info.width % 2 or info.height % 2:
        reasons.append(f"odd size {info.width}x{info.height}")
    if info.has_audio and info.audio_codec not in BROWSER_AUDIO_CODECS:
        reasons.append(f"audio codec {info.audio_codec or 'unknown'} is not playable in browsers")
    return "; ".join(reasons) or None


def _top_level_atoms(path: PathLike) -> Iterator[tuple[str, int, int]]:
    """(type, offset, size) of each top-level ISO-BMFF atom; MediaError on a malformed layout."""
    file_size = os.stat(path).st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + 8 <= file_size:
            handle.seek(offset)
            size, raw_kind = struct.unpack(">I4s", handle.read(8))
            header = 8
            if size == 1:  # 64-bit "largesize" follows the type
                size = struct.unpack(">Q", handle.read(8))[0]
                header = 16
            elif size == 0:  # the atom runs to the end of the file
                size = file_size - offset
            kind = raw_kind.decode("latin-1")
            if not kind.isprintable() or size < header:
                raise MediaError(f"not an MP4 file: bad atom header at byte {offset}")
            yield kind, offset, size
            offset += size


def needs_faststart(path: PathLike) -> bool:
    """True when the file's ``mdat`` atom comes before its ``moov`` atom.

    Browsers then have to fetch the end of the file before they can start playing; a remux
    with ``+faststart`` fixes that without re-encoding. Only top-level atom headers are read
    (a few bytes per atom, whatever the file size). False when ``moov`` comes first or there
    is no ``mdat``; MediaError when the file is not ISO-BMFF or has no ``moov`` atom.
    A truncated last atom is tolerated (only its position matters here).
    """
    moov = mdat = None
    try:
        for kind, offset, _size in _top_level_atoms(path):
            if kind == "moov" and moov is None:
                moov = offset
            elif kind == "mdat" and mdat is None:
                mdat = offset
            if moov is not None and mdat is not None:
                break
    except (MediaError, struct.error):
        if moov is None:  # junk after a moov atom (trailing garbage) does not change the answer
            raise MediaError("not an MP4 file: malformed or truncated atom header") from None
    if moov is None:
        raise MediaError("not an MP4 file: no moov atom")
    return mdat is not None and mdat < moov


# --------------------------------------------------------------------------- writing


def remux_faststart(src: PathLike, dst: PathLike, *, timeout: float | None = None) -> None:
    """Copy the first video stream of ``src`` into an MP4 at ``dst`` with the moov atom first.

    No re-encoding (``-c copy``), so it takes about as long as copying the file. Audio is
    dropped, as in ``transcode`` (raters watch muted; one rule for every browser file), and so
    are metadata and chapters (a title or comment may name the generator; raters are blind).
    Atomic; MediaError with ffmpeg's reason on failure.
    """
    with atomic_path(dst) as tmp:
        stream = ffmpeg.output(
            ffmpeg.input(os.fspath(src))["V:0"],
            os.fspath(tmp),
            format="mp4",
            c="copy",
            movflags="+faststart",
            map_metadata=-1,
            map_chapters=-1,
            an=None,
            sn=None,
            dn=None,
        ).overwrite_output()
        run_ffmpeg(stream, timeout=timeout, what="remux failed", paths=(src, tmp))


def transcode(
    src: PathLike, dst: PathLike, *, max_height: int = 1080, timeout: float | None = None
) -> None:
    """Re-encode ``src`` into a browser-playable MP4 at ``dst``.

    Output contract: H.264 (libx264, preset veryfast, CRF 20), yuv420p, square pixels, even
    width and height (height rounded down, width to the nearest even number), at most
    ``max_height`` rows (taller sources are scaled down keeping the displayed aspect ratio;
    smaller ones are not upscaled), the source's frame rate, ``+faststart``, and no audio:
    raters watch muted and metrics use frames only, so audio would cost bytes and a second
    codec for nothing. Rotation metadata is applied to the pixels (ffmpeg's autorotate), so
    the output needs none; no other metadata or chapters are kept (they may name the generator).

    Written atomically; on failure the temporary file is removed, ``dst`` is untouched and
    MediaError carries ffmpeg's reason.
    """
    if max_height < 2:
        raise ValueError("max_height must be at least 2")
    with atomic_path(dst) as tmp:
        video = (
            ffmpeg.input(os.fspath(src))["V:0"]
            # h first (even, capped), then w from it via the display aspect ratio, to the
            # nearest even number (nearest, not down: 161x97 becomes 160x96, not 158x96).
            .filter("scale", w="2*round(oh*dar/2)", h=f"trunc(min(ih,{int(max_height)})/2)*2")
            .filter("setsar", 1)
        )
        stream = ffmpeg.output(
            video,
            os.fspath(tmp),
            format="mp4",
            vcodec="libx264",
            preset="veryfast",
            crf=20,
            pix_fmt="yuv420p",
            movflags="+faststart",
            map_metadata=-1,
            map_chapters=-1,
            an=None,
            sn=None,
            dn=None,
        ).overwrite_output()
        run_ffmpeg(stream, timeout=timeout, what="transcode failed", paths=(src, tmp))


def poster_time(info: ProbeResult, at_seconds: float | None = None) -> float:
    """Where the poster frame is taken: ``at_seconds`` if given, else min(10 % of the
    duration, 0.5 s); clamped to [0, duration - one frame] so the seek lands on a frame."""
    at = min(0.1 * info.duration, 0.5) if at_seconds is None else float(at_seconds)
    last = max(0.0, info.duration - 1.0 / info.fps)
    return min(max(0.0, at), last)


def make_poster(
    src: PathLike,
    dst: PathLike,
    *,
    at_seconds: float | None = None,
    max_width: int = 640,
    timeout: float | None = 60.0,
) -> None:
    """Write one frame of ``src`` as a JPEG (quality 85) at ``dst``.

    The frame is taken at ``poster_time(...)`` (falling back to the first frame when the seek
    yields nothing, e.g. a container that overstates its duration), decoded to raw RGB
    through a pipe, and sized to the displayed aspect ratio with at most ``max_width``
    columns (never upscaled). Atomic; MediaError when no frame can be decoded.
    """
    if max_width < 1:
        raise ValueError("max_width must be positive")
    info = probe(src)
    disp_w, disp_h = info.display_size
    width = min(max_width, disp_w)
    height = max(1, round(width * disp_h / disp_w))
    frame = b""
    for at in dict.fromkeys((poster_time(info, at_seconds), 0.0)):
        stream = (
            ffmpeg.input(os.fspath(src), ss=f"{at:.3f}")["V:0"]
            .filter("scale", width, height)
            .output("pipe:", format="rawvideo", pix_fmt="rgb24", vframes=1)
        )
        frame = run_ffmpeg(stream, timeout=timeout, what="poster failed", paths=(src,))
        if frame:
            break
    if len(frame) != width * height * 3:
        raise MediaError(f"poster failed: no frame could be decoded ({len(frame)} bytes)")
    image = Image.frombytes("RGB", (width, height), frame)
    with atomic_path(dst) as tmp:
        image.save(tmp, format="JPEG", quality=85)


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes, read ``chunk`` bytes at a time (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
