"""Frame sampling: probe a video, decode it once, and hand each FrameSpec its frames.

The video is decoded by one ffmpeg process (ffmpeg-python), as raw RGB24 through a pipe (no
temporary files). A ``select`` filter keeps only the union of the frames that the requested
specs need, and a ``scale`` filter brings them to the largest size any spec asks for, so the
pipe carries a bounded number of bounded frames whatever the video's length or resolution.
Each spec then takes its frames from that one decode (resized with area interpolation when it
wants them smaller). :meth:`SpecFrames.describe` records the sampling stored with a score.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from metrics.errors import VideoDecodeError
from metrics.registry import FrameSpec


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about the first video stream. Sizes are as displayed (rotation applied)."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    codec: str


@dataclass
class SpecFrames:
    """One spec's frames from the decode, and how they were chosen."""

    spec: FrameSpec
    frames: np.ndarray  # (N, H, W, 3) uint8
    indices: list[int]  # native frame numbers of ``frames``
    pairs: list[tuple[int, int]]  # positions in ``frames`` that temporal metrics compare
    step: float  # native frames between the two frames of a pair
    native_size: tuple[int, int]  # (width, height) that flow is reported in
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    @property
    def scale(self) -> tuple[float, float]:
        """Native pixels per sampled pixel, along x and y."""
        w, h = self.size
        return self.native_size[0] / w, self.native_size[1] / h

    def describe(self) -> dict[str, Any]:
        return {
            **self.spec.describe(),
            "frames": len(self.indices),
            "indices": self.indices,
            "pairs": len(self.pairs),
            "step": round(self.step, 4),
            "size": list(self.size),
            "native_size": list(self.native_size),
            "fps": round(self.fps, 4),
        }


@dataclass
class VideoSample:
    info: VideoInfo
    native_size: tuple[int, int]
    decode_size: tuple[int, int]
    decoded_frames: int
    specs: dict[str, SpecFrames]


class ProcessRegistry:
    """Live ffmpeg processes of one run, so a cancelled run (time limit) can kill them."""

    def __init__(self) -> None:
        self._procs: set[Any] = set()
        self._lock = threading.Lock()
        self.cancelled = False

    def add(self, proc: Any) -> None:
        with self._lock:
            if self.cancelled:
                proc.kill()
            self._procs.add(proc)

    def discard(self, proc: Any) -> None:
        with self._lock:
            self._procs.discard(proc)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            for proc in self._procs:
                proc.kill()


def _fraction(value: str | None) -> float:
    try:
        number = Fraction(value or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(number) if number > 0 else 0.0


def _short_error(text: str, path: Path) -> str:
    lines = [line.strip() for line in text.replace(str(path), "<video>").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def probe_video(path: Path) -> VideoInfo:
    """ffprobe the file. Raises VideoDecodeError when it is missing or has no video stream."""
    import ffmpeg

    if not path.is_file():
        raise VideoDecodeError("video file not found")
    try:
        probe = ffmpeg.probe(str(path), select_streams="v:0")
    except ffmpeg.Error as exc:
        raise VideoDecodeError(
            f"undecodable video: {_short_error(exc.stderr.decode(errors='replace'), path)}"
        ) from None
    streams = [s for s in probe.get("streams", []) if s.get("codec_type") == "video"]
    if not streams:
        raise VideoDecodeError("undecodable video: no video stream")
    stream = streams[0]
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise VideoDecodeError("undecodable video: no frame size")
    rotation = 0.0
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            rotation = float(side["rotation"])
    rotation = rotation or float((stream.get("tags") or {}).get("rotate", 0) or 0)
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    fps = _fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate"))
    duration = float(stream.get("duration") or probe.get("format", {}).get("duration") or 0.0)
    frame_count = int(stream.get("nb_frames") or 0)
    if frame_count <= 0 and duration > 0 and fps > 0:
        frame_count = int(round(duration * fps))
    if frame_count <= 0 or fps <= 0:
        raise VideoDecodeError("undecodable video: unknown frame count or frame rate")
    return VideoInfo(width, height, fps, frame_count, duration, str(stream.get("codec_name", "")))


def plan(spec: FrameSpec, frame_count: int, fps: float) -> tuple[list[int], list[tuple[int, int]], float]:
    """The native frame numbers a spec wants, the pairs it compares, and the pair step."""
    n = frame_count
    if spec.mode == "uniform":
        k = min(spec.count, n)
        indices = sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})
        step = (n - 1) / (len(indices) - 1) if len(indices) > 1 else 0.0
        return indices, [(i, i + 1) for i in range(len(indices) - 1)], step
    if spec.mode == "adjacent":
        if n < 2:
            return [0], [], 1.0
        starts = sorted({int(round(x)) for x in np.linspace(0, n - 2, min(spec.count, n - 1))})
        indices = [frame for start in starts for frame in (start, start + 1)]
        return indices, [(2 * i, 2 * i + 1) for i in range(len(starts))], 1.0
    step = max(1, int(round(fps / float(spec.rate))))
    available = math.ceil(n / step)
    if available <= spec.count:
        indices = list(range(0, n, step))
        return indices, [(i, i + 1) for i in range(len(indices) - 1)], float(step)
    seg = max(2, min(spec.segment, spec.count))
    n_seg = max(1, spec.count // seg)
    span = (seg - 1) * step
    starts = [int(round(x)) for x in np.linspace(0, n - 1 - span, n_seg)]
    indices, pairs = [], []
    for start in starts:
        base = len(indices)
        indices.extend(start + step * j for j in range(seg))
        pairs.extend((base + j, base + j + 1) for j in range(seg - 1))
    return indices, pairs, float(step)


def spec_size(spec: FrameSpec, width: int, height: int) -> tuple[int, int]:
    scale = 1.0
    if spec.short_side:
        scale = min(scale, spec.short_side / min(width, height))
    if spec.long_side:
        scale = min(scale, spec.long_side / max(width, height))
    return max(2, int(round(width * scale))), max(2, int(round(height * scale)))


def _native_size(info: VideoInfo, declared: tuple[int, int] | None) -> tuple[int, int]:
    """The size flow is reported in: the Video row's (the generator's output) when its aspect
    matches the decoded file (a browser transcode may be smaller), else the file's own."""
    if declared and declared[0] and declared[1]:
        w, h = declared
        if abs(w / h - info.width / info.height) <= 0.02 * info.width / info.height:
            return int(w), int(h)
        if abs(h / w - info.width / info.height) <= 0.02 * info.width / info.height:
            return int(h), int(w)
    return info.width, info.height


def decode_frames(
    path: Path,
    indices: Iterable[int],
    size: tuple[int, int],
    *,
    threads: int = 1,
    processes: ProcessRegistry | None = None,
) -> dict[int, np.ndarray]:
    """Decode the given native frame numbers at ``size`` through one ffmpeg pipe.

    Returns frame number -> (H, W, 3) uint8. Frames past the real end are simply absent
    (container frame counts can overstate by a frame or two).
    """
    import ffmpeg

    wanted = sorted(set(indices))
    width, height = size
    expr = "+".join(f"eq(n,{i})" for i in wanted)
    vf = f"select='{expr}',scale={width}:{height}:flags=area"
    stream = (
        ffmpeg.input(str(path), threads=threads)
        .output("pipe:", vf=vf, format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough", an=None, sn=None)
        .global_args("-nostdin", "-loglevel", "error")
    )
    proc = stream.run_async(pipe_stdout=True, pipe_stderr=True)
    if processes is not None:
        processes.add(proc)
    stderr_chunks: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    frame_bytes = width * height * 3
    frames = np.empty((len(wanted), height, width, 3), dtype=np.uint8)
    got = 0
    try:
        while got < len(wanted):
            view = memoryview(frames[got]).cast("B")
            filled = 0
            while filled < frame_bytes:
                n = proc.stdout.readinto(view[filled:])
                if not n:
                    break
                filled += n
            if filled < frame_bytes:
                break
            got += 1
        proc.stdout.read()  # drain anything unexpected so ffmpeg can exit
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        if processes is not None:
            processes.discard(proc)
    if processes is not None and processes.cancelled:
        raise RuntimeError("decode cancelled")
    if returncode != 0 or got == 0:
        message = _short_error(b"".join(stderr_chunks).decode(errors="replace"), path)
        raise VideoDecodeError(f"undecodable video: {message if returncode else 'no frames decoded'}")
    return {index: frames[pos] for pos, index in enumerate(wanted[:got])}


def sample_video(
    path: Path,
    specs: Iterable[FrameSpec],
    *,
    native_size: tuple[int, int] | None = None,
    threads: int = 1,
    processes: ProcessRegistry | None = None,
) -> VideoSample:
    """Probe, decode once, and return every spec's frames."""
    import cv2

    specs = {spec.key: spec for spec in specs}
    info = probe_video(path)
    native = _native_size(info, native_size)
    plans = {key: plan(spec, info.frame_count, info.fps) for key, spec in specs.items()}
    sizes = {key: spec_size(spec, info.width, info.height) for key, spec in specs.items()}
    biggest = max(sizes.values(), key=lambda wh: wh[0] * wh[1])
    decode_size = (biggest[0] + biggest[0] % 2, biggest[1] + biggest[1] % 2)
    decode_size = (min(decode_size[0], info.width + info.width % 2), min(decode_size[1], info.height + info.height % 2))
    union = {i for indices, _, _ in plans.values() for i in indices}
    decoded = decode_frames(path, union, decode_size, threads=threads, processes=processes)

    out: dict[str, SpecFrames] = {}
    for key, spec in specs.items():
        indices, pairs, step = plans[key]
        keep = [pos for pos, index in enumerate(indices) if index in decoded]
        if len(keep) < len(indices):  # the file ended early: drop missing frames and their pairs
            remap = {old: new for new, old in enumerate(keep)}
            pairs = [(remap[a], remap[b]) for a, b in pairs if a in remap and b in remap]
            indices = [indices[pos] for pos in keep]
        width, height = sizes[key]
        frames = np.stack([decoded[i] for i in indices])
        if (width, height) != decode_size:
            frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
        out[key] = SpecFrames(spec, frames, indices, pairs, step, native, info.fps)
    return VideoSample(info, native, decode_size, len(decoded), out)
