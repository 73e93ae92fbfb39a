"""Synthetic demo videos: three fictional generators whose clips differ visibly in motion.

No downloads and no models: each clip is a coloured shape over a gradient landscape, drawn
with numpy and Pillow and piped as raw RGB into ffmpeg (libx264, yuv420p, +faststart), with
the prompt written on every frame. The three styles stand for three kinds of generator:

- ``smooth``  — the shape glides along an eased path while the camera pans gently;
- ``jittery`` — the same scene, but the shape and the camera jump erratically, frames
  stutter (repeat, then jump) and the brightness flickers (mildly: see ``_trajectory``);
- ``static``  — a still scene: the shape sits in place, only a barely visible breathing of
  brightness and a one-pixel drift.

The seed picks the palette, the shape and the landscape, so different prompts look different
while one prompt looks the same across generators (a pair compares motion, not subject).
Text is drawn with Pillow (DejaVu Sans when it can be found, else Pillow's built-in font), so
ffmpeg's drawtext and fontconfig are not needed.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from annotation.media import PathLike, atomic_path, run_ffmpeg

STYLES = ("smooth", "jittery", "static")

#: Fictional generator name -> rendering style.
DEMO_GENERATORS: dict[str, str] = {"Aurora-Smooth": "smooth", "Jitterbug": "jittery", "Stillframe": "static"}

DEMO_PROMPTS: list[dict[str, Any]] = [
    {"prompt_id": "demo-01", "prompt": "A red fox running through fresh snow at dusk",
     "tags": {"motion": "fast", "category": "animals"}},
    {"prompt_id": "demo-02", "prompt": "A sailboat drifting slowly across a calm lake at sunrise",
     "tags": {"motion": "slow", "category": "nature"}},
    {"prompt_id": "demo-03", "prompt": "A hummingbird hovering beside a purple flower, wings a blur",
     "tags": {"motion": "fast", "category": "animals"}},
    {"prompt_id": "demo-04", "prompt": "Time-lapse of clouds rolling over a mountain ridge",
     "tags": {"motion": "slow", "category": "nature"}},
    {"prompt_id": "demo-05", "prompt": "A skateboarder landing a kickflip in an empty parking lot",
     "tags": {"motion": "fast", "category": "people"}},
    {"prompt_id": "demo-06", "prompt": "An old man reading a newspaper on a park bench in autumn",
     "tags": {"motion": "slow", "category": "people"}},
    {"prompt_id": "demo-07", "prompt": (
        "A bustling night market with steaming food stalls, paper lanterns swaying overhead and "
        "crowds weaving between the stalls while a street musician plays in the rain"),
     "tags": {"motion": "fast", "category": "city"}},
    {"prompt_id": "demo-08", "prompt": "Steam rising from a cup of coffee on a wooden table",
     "tags": {"motion": "slow", "category": "still life"}},
    {"prompt_id": "demo-09", "prompt": "A golden retriever leaping to catch a frisbee on the beach",
     "tags": {"motion": "fast", "category": "animals"}},
    {"prompt_id": "demo-10", "prompt": "Jellyfish pulsing gently in deep blue water",
     "tags": {"motion": "slow", "category": "underwater"}},
    {"prompt_id": "demo-11", "prompt": "A drone flying low and fast over green rice terraces",
     "tags": {"motion": "fast", "category": "aerial"}},
    {"prompt_id": "demo-12", "prompt": "Ink drops blooming in a glass of water, macro shot",
     "tags": {"motion": "slow", "category": "abstract"}},
]

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # Alpine, older Fedora
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
    "/usr/local/share/fonts/dejavu/DejaVuSans.ttf",  # FreeBSD
    "/System/Library/Fonts/Supplemental/Arial.ttf",  # macOS
    "C:/Windows/Fonts/arial.ttf",
)


def prompt_seed(prompt_id: str) -> int:
    """A stable seed for a prompt id (``hash()`` is salted per process, crc32 is not)."""
    return zlib.crc32(prompt_id.encode("utf-8"))


# --------------------------------------------------------------------------- text


def _fc_match(family: str) -> str | None:
    if not shutil.which("fc-match"):
        return None
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", family], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (or another system sans) at ``size`` px; Pillow's built-in font as a last resort."""
    candidates: list[str] = [path for path in FONT_CANDIDATES if os.path.isfile(path)]
    candidates.append("DejaVuSans.ttf")  # Pillow looks this name up in the system font folders
    if matched := _fc_match("DejaVu Sans"):
        candidates.append(matched)
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: Any, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by rendered width; the last line ends in "…" when text is cut."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for index, word in enumerate(words):
        trial = f"{current} {word}".strip()
        if current and font.getlength(trial) > max_width:
            lines.append(current)
            current = word
            if len(lines) == max_lines:
                current = " ".join(words[index:])
                break
        else:
            current = trial
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + " …") > max_width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        lines = [*lines[: max_lines - 1], last + " …"]
    return lines


def _caption(text: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The caption band for the bottom of the frame: (rgb float32 HxWx3, alpha float32 HxWx1)."""
    size = max(10, height // 16)
    font = _font(size)
    pad = max(4, size // 2)
    lines = _wrap(text, font, width - 2 * pad, max_lines=3)
    line_height = round(size * 1.25)
    band = Image.new("RGBA", (width, pad * 2 + line_height * len(lines)), (0, 0, 0, 150))
    draw = ImageDraw.Draw(band)
    for row, line in enumerate(lines):
        draw.text((pad, pad + row * line_height), line, font=font, fill=(255, 255, 255, 255))
    pixels = np.asarray(band, dtype=np.float32)
    return pixels[..., :3], pixels[..., 3:] / 255.0


# --------------------------------------------------------------------------- scene


@dataclass
class _Scene:
    background: np.ndarray  # float32 (H, W + pan, 3): wider than the frame so the camera can pan
    pan: int
    sprite: np.ndarray  # float32 (S, S, 3)
    sprite_alpha: np.ndarray  # float32 (S, S, 1)
    caption: np.ndarray
    caption_alpha: np.ndarray


def _hsv(hue: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, sat, val), dtype=np.float32) * 255.0


def _build_scene(rng: np.random.Generator, width: int, height: int, prompt_text: str) -> _Scene:
    pan = width // 4
    wide = width + pan
    hue = rng.random()
    sky_top, sky_bottom = _hsv(hue, 0.55, 0.95), _hsv(hue + 0.08, 0.35, 0.65)
    ground = _hsv(hue + rng.uniform(0.25, 0.45), 0.6, 0.45)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.arange(wide, dtype=np.float32)
    background = np.broadcast_to(sky_top * (1 - ys) + sky_bottom * ys, (height, wide, 3)).copy()
    # Soft light blobs and a hill line make the camera pan visible.
    yy, xx = np.mgrid[0:height, 0:wide].astype(np.float32)
    for _ in range(5):
        cx, cy = rng.uniform(0, wide), rng.uniform(0, height * 0.6)
        sigma = rng.uniform(0.06, 0.14) * width
        glow = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))[..., None]
        background += glow * (_hsv(hue + rng.uniform(-0.2, 0.2), 0.25, 1.0) - background) * 0.6
    phase, freq = rng.uniform(0, 2 * math.pi), rng.uniform(1.5, 3.5) * 2 * math.pi / width
    hill = height * (0.66 + 0.07 * np.sin(xs * freq + phase) + 0.03 * np.sin(xs * freq * 2.7 + 2 * phase))
    below = np.clip(yy - hill[None, :] + 0.5, 0.0, 1.0)[..., None]
    shade = (1.0 - 0.35 * (yy - hill[None, :]).clip(0) / height)[..., None]
    background = background * (1 - below) + ground * shade * below

    radius = int(height * rng.uniform(0.12, 0.17))
    side = 2 * radius + 2
    grid = np.arange(side, dtype=np.float32) - (side - 1) / 2
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    dist = np.hypot(gx, gy)
    shape = rng.choice(["circle", "square", "diamond", "ring"])
    edge = {
        "circle": radius - dist,
        "square": radius * 0.85 - np.maximum(abs(gx), abs(gy)),
        "diamond": radius - (abs(gx) + abs(gy)) * 0.8,
        "ring": radius * 0.32 - abs(dist - radius * 0.66),
    }[shape]
    alpha = np.clip(edge + 0.5, 0.0, 1.0)[..., None]
    light = 0.7 + 0.45 * np.clip(1 - np.hypot(gx + radius * 0.35, gy + radius * 0.35) / (1.6 * radius), 0, 1)
    sprite = np.clip(_hsv(hue + 0.5, 0.85, 0.9) * light[..., None], 0, 255)
    caption, caption_alpha = _caption(prompt_text, width, height)
    return _Scene(background.astype(np.float32), pan, sprite.astype(np.float32), alpha, caption, caption_alpha)


def _ease(t: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _trajectory(
    style: str, rng: np.random.Generator, frames: int, width: int, height: int, pan: int, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: sprite x, y (top-left, px), camera offset (px) and brightness factor."""
    t = np.linspace(0.0, 1.0, frames)
    direction = 1 if rng.random() < 0.5 else -1
    start = 0.15 if direction > 0 else 0.85
    x = width * (start + direction * 0.7 * _ease(t)) - side / 2
    y = height * (0.42 + 0.1 * np.sin(2 * np.pi * t + rng.uniform(0, np.pi))) - side / 2
    offset = pan * (_ease(t) if direction > 0 else 1 - _ease(t))
    gain = np.ones(frames)
    if style == "jittery":
        # Hold a pose for 1–3 frames, then jump: stutter plus erratic motion and flicker.
        held = np.zeros(frames, dtype=int)
        index = 0
        while index < frames:
            run = int(rng.integers(1, 4))
            held[index : index + run] = index
            index += run
        x = x[held] + rng.uniform(-0.18, 0.18, frames)[held] * width
        y = y[held] + rng.uniform(-0.15, 0.15, frames)[held] * height
        offset = np.clip(offset[held] + rng.uniform(-0.4, 0.4, frames)[held] * pan, 0, pan)
        # Mild flicker: ±5 % keeps every change well under WCAG 2.3.1's flash threshold (a 10 %
        # swing in relative luminance), which matters for raters who watch for hours.
        gain = rng.uniform(0.95, 1.05, frames)
    elif style == "static":
        x = np.full(frames, width * rng.uniform(0.3, 0.7) - side / 2) + t  # a 1 px drift
        y = np.full(frames, height * 0.42 - side / 2)
        offset = np.full(frames, pan / 2)
        gain = 1.0 + 0.012 * np.sin(2 * np.pi * t)
    return x.round().astype(int), y.round().astype(int), offset.round().astype(int), gain


def _render_frames(
    scene: _Scene, style: str, rng: np.random.Generator, frames: int, size: tuple[int, int]
) -> np.ndarray:
    """All frames as one uint8 array (frames, height, width, 3), ready to pipe as rgb24."""
    width, height = size
    side = scene.sprite.shape[0]
    xs, ys, offsets, gains = _trajectory(style, rng, frames, width, height, scene.pan, side)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    cap_h = scene.caption.shape[0]
    for i in range(frames):
        frame = scene.background[:, offsets[i] : offsets[i] + width] * np.float32(gains[i])
        # Paste the sprite, clipped to the frame.
        x0, y0 = xs[i], ys[i]
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        if fx0 < fx1 and fy0 < fy1:
            sy, sx = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
            a = scene.sprite_alpha[sy, sx]
            region = frame[fy0:fy1, fx0:fx1]
            frame[fy0:fy1, fx0:fx1] = region + (scene.sprite[sy, sx] * np.float32(gains[i]) - region) * a
        # The caption is not flickered: it is the prompt, not part of the generated scene.
        band = frame[height - cap_h :]
        frame[height - cap_h :] = band + (scene.caption - band) * scene.caption_alpha
        np.clip(frame, 0, 255, out=frame)
        out[i] = frame
    return out


def render_demo_video(
    dst: PathLike,
    *,
    prompt_text: str,
    style: str,
    seed: int,
    seconds: float = 4.0,
    fps: int = 24,
    size: tuple[int, int] = (480, 270),
) -> None:
    """Render one synthetic clip to ``dst``: H.264 yuv420p MP4 with +faststart, no audio.

    ``round(seconds * fps)`` frames at ``fps``; ``size`` is (width, height) and must be even
    (yuv420p). ``style`` is one of ``STYLES``. The same arguments give the same pixels. Written
    atomically; ValueError on bad arguments, MediaError if ffmpeg fails.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    width, height = size
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"size must be even and at least 32x32, not {width}x{height}")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    frames = max(1, round(seconds * fps))
    scene = _build_scene(np.random.default_rng(seed), width, height, prompt_text)
    motion_rng = np.random.default_rng([seed, STYLES.index(style)])
    pixels = _render_frames(scene, style, motion_rng, frames, size)
    with atomic_path(dst) as tmp:
        stream = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps
        ).output(
            os.fspath(tmp),
            format="mp4",
            vcodec="libx264",
            preset="veryfast",
            crf=23,
            pix_fmt="yuv420p",
            movflags="+faststart",
        )
        run_ffmpeg(stream.overwrite_output(), input_bytes=pixels.tobytes(), what="demo render failed")


def demo_video_path(root: Path, generator: str, prompt_id: str) -> Path:
    """Where ``write_demo_manifest`` puts one clip: root/videos/<generator-slug>/<prompt_id>.mp4."""
    return root / "videos" / generator.lower().replace(" ", "-") / f"{prompt_id}.mp4"


def write_demo_manifest(root: Path) -> Path:
    """Render every demo prompt × generator under ``root/videos`` and write ``root/manifest.jsonl``.

    Rows are ``{"prompt_id", "prompt", "generator", "video", "tags"}`` with ``video`` an
    absolute path. Idempotent: clips that already exist with a non-zero size are not
    rendered again. One prompt uses one seed for all generators. Returns the manifest path.
    """
    root = Path(root).resolve()
    rows = []
    for prompt in DEMO_PROMPTS:
        for generator, style in DEMO_GENERATORS.items():
            path = demo_video_path(root, generator, prompt["prompt_id"])
            if not (path.is_file() and path.stat().st_size > 0):
                render_demo_video(
                    path, prompt_text=prompt["prompt"], style=style, seed=prompt_seed(prompt["prompt_id"])
                )
            rows.append({
                "prompt_id": prompt["prompt_id"],
                "prompt": prompt["prompt"],
                "generator": generator,
                "video": str(path),
                "tags": prompt["tags"],
            })
    manifest = root / "manifest.jsonl"
    with atomic_path(manifest) as tmp:
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return manifest
