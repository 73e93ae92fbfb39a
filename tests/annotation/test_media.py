"""annotation.media and annotation.demo_media on real (tiny) files made by ffmpeg. No database."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import ffmpeg
import numpy as np
import pytest
from PIL import Image

from annotation import demo_media, media
from annotation.media import MP4_FAMILY, MediaError
from tests import media_fixtures as fx


def decode_gray(path: Path) -> np.ndarray:
    """All frames of ``path`` as float32 (frames, height, width) luma, decoded by ffmpeg."""
    info = media.probe(path)
    out, _ = (
        ffmpeg.input(str(path))
        .output("pipe:", format="rawvideo", pix_fmt="gray")
        .global_args("-nostdin", "-loglevel", "error")
        .run(quiet=True)
    )
    return np.frombuffer(out, np.uint8).reshape(-1, info.height, info.width).astype(np.float32)


def frame_diffs(path: Path) -> np.ndarray:
    """Mean absolute luma difference between consecutive frames (0–255 scale)."""
    return np.abs(np.diff(decode_gray(path), axis=0)).mean(axis=(1, 2))


def moov_before_mdat(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


# --------------------------------------------------------------------------- probe


def test_probe_h264_mp4_values(tmp_path):
    path = fx.make_h264_mp4(tmp_path / "a.mp4", seconds=1, size=(160, 96), fps=24)
    info = media.probe(path)
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.fps == pytest.approx(24.0)
    assert (info.width, info.height) == (160, 96)
    assert (info.codec, info.pix_fmt, info.container) == ("h264", "yuv420p", MP4_FAMILY)
    assert info.has_audio is False and info.audio_codec is None
    assert info.size_bytes == path.stat().st_size
    assert info.nb_frames == 24
    assert info.display_size == (160, 96)


def test_probe_reports_audio(tmp_path):
    info = media.probe(fx.make_h264_mp4(tmp_path / "a.mp4", audio=True))
    assert info.has_audio is True and info.audio_codec == "aac"
    assert media.needs_transcode(info) is None  # AAC in MP4 plays


def test_probe_webm_has_no_frame_count(tmp_path):
    info = media.probe(fx.make_vp9_webm(tmp_path / "b.webm", fps=25, seconds=0.8))
    assert (info.codec, info.container) == ("vp9", "matroska,webm")
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(0.8, abs=0.05)
    assert info.nb_frames is None


def test_probe_rotation_swaps_display_size(tmp_path):
    info = media.probe(fx.make_rotated_mp4(tmp_path / "r.mp4", degrees=90))
    if info.rotation == 0:
        pytest.skip("this ffmpeg does not write the rotate tag as a display matrix")
    assert abs(info.rotation) == 90
    assert (info.width, info.height) == (160, 96)
    assert info.display_size == (96, 160)


@pytest.mark.parametrize(
    ("make", "name", "expected"),
    [
        (lambda p: fx.make_corrupt_file(p), "random.mp4", "not a video: "),
        (lambda p: fx.make_corrupt_file(p, kind="truncated"), "cut.mp4", "moov atom not found"),
        (lambda p: fx.make_text_file(p), "notes.txt", "not a video"),
        (lambda p: fx.make_text_file(p, lines=1), "short.txt", "Invalid data found when processing input"),
        (lambda p: fx.make_audio_only(p), "sound.m4a", "no video stream"),
        (lambda p: fx.make_zero_duration(p), "one.h264", "zero duration"),
    ],
    ids=["random-bytes", "truncated-mp4", "text-tty", "text-short", "audio-only", "no-duration"],
)
def test_probe_rejects_non_videos_with_a_reason(tmp_path, make, name, expected):
    path = make(tmp_path / name)
    with pytest.raises(MediaError) as caught:
        media.probe(path)
    reason = str(caught.value)
    assert expected in reason
    assert reason == caught.value.reason
    assert str(tmp_path) not in reason  # paths are trimmed to names
    assert len(reason) <= 520


def test_probe_rejects_still_images(tmp_path):
    path = tmp_path / "still.png"
    Image.new("RGB", (32, 32), "red").save(path)
    with pytest.raises(MediaError, match="still image"):
        media.probe(path)


def test_probe_missing_file_is_an_os_error_not_a_bad_video(tmp_path):
    with pytest.raises(FileNotFoundError):
        media.probe(tmp_path / "missing.mp4")


def test_ffmpeg_reason_is_trimmed_and_keeps_the_last_lines():
    noise = b"".join(b"[h264 @ 0x55d0c0ffee00] error %d while decoding\n" % i for i in range(200))
    reason = media._clean_stderr(noise + b"/data/in/x.mp4: Invalid data found when processing input\n",
                                 ("/data/in/x.mp4",))
    assert len(reason) <= 500
    assert reason.endswith("Invalid data found when processing input")
    assert "0x55d0c0ffee00" not in reason and "/data/in" not in reason


# --------------------------------------------------------------------------- decisions


def test_h264_yuv420p_even_mp4_is_kept(tmp_path):
    assert media.needs_transcode(media.probe(fx.make_h264_mp4(tmp_path / "a.mp4"))) is None


@pytest.mark.parametrize(
    ("make", "name", "expected"),
    [
        (fx.make_vp9_webm, "b.webm", ["container matroska,webm is not MP4", "codec vp9 is not H.264"]),
        (fx.make_yuv444_mp4, "c.mp4", ["pixel format yuv444p is not yuv420p"]),
        (fx.make_odd_size_mp4, "d.mp4", ["odd size 161x97"]),
        (fx.make_mpeg4_mp4, "e.mp4", ["codec mpeg4 is not H.264"]),
    ],
    ids=["vp9-webm", "yuv444", "odd-size", "mpeg4-part2"],
)
def test_needs_transcode_names_the_reason(tmp_path, make, name, expected):
    reason = media.needs_transcode(media.probe(make(tmp_path / name)))
    assert reason is not None
    for part in expected:
        assert part in reason


def test_needs_transcode_flags_audio_browsers_cannot_play(tmp_path):
    info = media.probe(fx.make_h264_mp4(tmp_path / "a.mp4"))
    pcm = dataclasses.replace(info, has_audio=True, audio_codec="pcm_s16le")
    assert "audio codec pcm_s16le" in media.needs_transcode(pcm)


def test_needs_faststart_reads_atom_order(tmp_path):
    assert media.needs_faststart(fx.make_h264_mp4(tmp_path / "fast.mp4", faststart=True)) is False
    assert media.needs_faststart(fx.make_h264_mp4(tmp_path / "slow.mp4", faststart=False)) is True


def test_needs_faststart_refuses_non_mp4(tmp_path):
    with pytest.raises(MediaError, match="not an MP4"):
        media.needs_faststart(fx.make_vp9_webm(tmp_path / "b.webm"))
    with pytest.raises(MediaError, match="not an MP4"):
        media.needs_faststart(fx.make_text_file(tmp_path / "t.txt"))


def test_remux_faststart_moves_moov_first_without_reencoding(tmp_path):
    src = fx.make_h264_mp4(tmp_path / "slow.mp4", faststart=False, audio=True)
    dst = tmp_path / "out" / "fast.mp4"
    media.remux_faststart(src, dst)
    assert media.needs_faststart(dst) is False and moov_before_mdat(dst)
    before, after = media.probe(src), media.probe(dst)
    assert (after.codec, after.pix_fmt, after.width, after.height) == ("h264", "yuv420p", 160, 96)
    assert after.nb_frames == before.nb_frames
    assert after.has_audio is False  # audio is dropped, as in transcode
    np.testing.assert_array_equal(decode_gray(src), decode_gray(dst))  # stream copy: same pixels
    assert fx.file_names(dst.parent) == ["fast.mp4"]


# --------------------------------------------------------------------------- transcode


def assert_browser_playable(path: Path) -> media.ProbeResult:
    info = media.probe(path)
    assert media.needs_transcode(info) is None
    assert (info.codec, info.pix_fmt, info.container) == ("h264", "yuv420p", MP4_FAMILY)
    assert info.width % 2 == 0 and info.height % 2 == 0
    assert media.needs_faststart(path) is False and moov_before_mdat(path)
    return info


def test_transcode_vp9_webm_to_playable_mp4(tmp_path):
    src = fx.make_vp9_webm(tmp_path / "b.webm", seconds=1, fps=24)
    dst = tmp_path / "out" / "b.mp4"
    media.transcode(src, dst)
    info = assert_browser_playable(dst)
    assert (info.width, info.height) == (160, 96)
    assert info.fps == pytest.approx(24.0)
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.nb_frames is not None and abs(info.nb_frames - 24) <= 1
    assert info.has_audio is False
    assert fx.file_names(dst.parent) == ["b.mp4"]


def test_transcode_keeps_frame_rate_and_drops_audio(tmp_path):
    src = fx.make_h264_mp4(tmp_path / "a.mp4", fps=30, seconds=0.5, audio=True)
    media.transcode(src, tmp_path / "t.mp4")
    info = assert_browser_playable(tmp_path / "t.mp4")
    assert info.fps == pytest.approx(30.0)
    assert info.nb_frames == 15
    assert info.has_audio is False


def test_transcode_odd_size_rounds_to_even_keeping_aspect(tmp_path):
    media.transcode(fx.make_odd_size_mp4(tmp_path / "d.mp4", size=(161, 97)), tmp_path / "d-t.mp4")
    info = assert_browser_playable(tmp_path / "d-t.mp4")
    assert (info.width, info.height) == (160, 96)


def test_transcode_downscales_to_max_height(tmp_path):
    media.transcode(fx.make_yuv444_mp4(tmp_path / "c.mp4", size=(160, 96)), tmp_path / "small.mp4", max_height=48)
    info = assert_browser_playable(tmp_path / "small.mp4")
    assert (info.width, info.height) == (80, 48)


def test_transcode_applies_rotation(tmp_path):
    src = fx.make_rotated_mp4(tmp_path / "r.mp4", degrees=90)
    if media.probe(src).rotation == 0:
        pytest.skip("this ffmpeg does not write the rotate tag as a display matrix")
    media.transcode(src, tmp_path / "r-t.mp4")
    info = assert_browser_playable(tmp_path / "r-t.mp4")
    assert (info.width, info.height, info.rotation) == (96, 160, 0)


def test_transcode_failure_leaves_nothing_behind(tmp_path):
    src = fx.make_corrupt_file(tmp_path / "bad.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.mp4").write_bytes(b"previous version")
    with pytest.raises(MediaError, match=r"^transcode failed: .+") as caught:
        media.transcode(src, out / "keep.mp4")
    assert "Invalid data" in str(caught.value) or "moov atom not found" in str(caught.value)
    assert fx.file_names(out) == ["keep.mp4"]  # no temporary file left
    assert (out / "keep.mp4").read_bytes() == b"previous version"  # the old file is untouched


def test_remux_failure_leaves_nothing_behind(tmp_path):
    src = fx.make_corrupt_file(tmp_path / "bad.mp4")
    out = tmp_path / "out"
    with pytest.raises(MediaError, match="^remux failed"):
        media.remux_faststart(src, out / "x.mp4")
    assert fx.file_names(out) == []


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    target = tmp_path / "out" / "x.bin"
    with pytest.raises(RuntimeError), media.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert fx.file_names(target.parent) == []
    with pytest.raises(MediaError, match="empty"), media.atomic_path(target) as tmp:
        tmp.write_bytes(b"")  # a "successful" command that wrote nothing does not replace dst
    assert fx.file_names(target.parent) == []
    with media.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and fx.file_names(target.parent) == ["x.bin"]


# --------------------------------------------------------------------------- poster, hash


def test_poster_is_a_jpeg_of_the_video_aspect(tmp_path):
    src = fx.make_h264_mp4(tmp_path / "a.mp4", size=(160, 96))
    media.make_poster(src, tmp_path / "p.jpg")
    with Image.open(tmp_path / "p.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (160, 96)  # never upscaled past the source
        image.verify()
    media.make_poster(src, tmp_path / "small.jpg", max_width=80)
    with Image.open(tmp_path / "small.jpg") as image:
        assert image.size == (80, 48)


def test_poster_shows_the_frame_not_noise(tmp_path):
    """The poster's pixels match ffmpeg's own decode of the frame (JPEG tolerance)."""
    src = fx.make_h264_mp4(tmp_path / "a.mp4", size=(160, 96), fps=24)
    media.make_poster(src, tmp_path / "p.jpg", at_seconds=0.5)
    poster = np.asarray(Image.open(tmp_path / "p.jpg").convert("L"), dtype=np.float32)
    frames = decode_gray(src)
    errors = [np.abs(poster - frame).mean() for frame in frames]
    assert int(np.argmin(errors)) == 12  # 0.5 s at 24 fps
    assert min(errors) < 6.0


def test_poster_time_defaults_and_clamps(tmp_path):
    info = media.probe(fx.make_h264_mp4(tmp_path / "a.mp4", seconds=1, fps=24))
    assert media.poster_time(info) == pytest.approx(0.1)  # 10 % of 1 s < 0.5 s
    long = dataclasses.replace(info, duration=60.0)
    assert media.poster_time(long) == pytest.approx(0.5)
    assert media.poster_time(info, 99.0) == pytest.approx(1.0 - 1 / 24)
    assert media.poster_time(info, -3) == 0.0
    media.make_poster(tmp_path / "a.mp4", tmp_path / "end.jpg", at_seconds=99.0)  # still finds a frame
    assert Image.open(tmp_path / "end.jpg").size == (160, 96)


def test_poster_of_a_rotated_video_is_upright(tmp_path):
    src = fx.make_rotated_mp4(tmp_path / "r.mp4", degrees=90)
    if media.probe(src).rotation == 0:
        pytest.skip("this ffmpeg does not write the rotate tag as a display matrix")
    media.make_poster(src, tmp_path / "r.jpg")
    assert Image.open(tmp_path / "r.jpg").size == (96, 160)


def test_poster_failure_raises_and_writes_nothing(tmp_path):
    src = fx.make_text_file(tmp_path / "in.txt")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="not a video"):
        media.make_poster(src, out / "p.jpg")
    assert fx.file_names(out) == []


def test_sha256_file_matches_hashlib(tmp_path):
    path = fx.make_h264_mp4(tmp_path / "a.mp4")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert media.sha256_file(path) == expected
    assert media.sha256_file(path, chunk=1000) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert media.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


# --------------------------------------------------------------------------- demo videos


def test_render_demo_video_is_playable_h264_of_the_requested_length(tmp_path):
    dst = tmp_path / "demo" / "clip.mp4"
    demo_media.render_demo_video(dst, prompt_text="A red fox in the snow", style="smooth", seed=1,
                                 seconds=1.5, fps=24, size=(240, 136))
    info = assert_browser_playable(dst)
    assert (info.width, info.height) == (240, 136)
    assert info.fps == pytest.approx(24.0)
    assert info.duration == pytest.approx(1.5, abs=0.05)
    assert info.nb_frames == 36
    assert fx.file_names(dst.parent) == ["clip.mp4"]


def render_styles(tmp_path: Path, seed: int) -> dict[str, np.ndarray]:
    diffs = {}
    for style in demo_media.STYLES:
        path = tmp_path / f"{style}-{seed}.mp4"
        demo_media.render_demo_video(path, prompt_text="Same prompt for all", style=style, seed=seed,
                                     seconds=2.0, size=(240, 136))
        diffs[style] = frame_diffs(path)
    return diffs


@pytest.mark.parametrize("seed", [5, 42])
def test_demo_styles_differ_measurably(tmp_path, seed):
    diffs = render_styles(tmp_path, seed)
    smooth, jittery, static = diffs["smooth"], diffs["jittery"], diffs["static"]
    # Measured (seeds 1–99): static ≈ 0.1, smooth ≈ 0.8–2.2, jittery ≈ 5–10 mean |Δ| per frame;
    # frame-to-frame spread (std) of jittery ≥ 5× smooth. Bounds leave ~2× headroom.
    assert static.mean() < 0.3 * smooth.mean()
    assert smooth.mean() > 0.3  # smooth really moves
    assert jittery.std() > 3 * smooth.std()
    assert jittery.mean() > 2 * smooth.mean()


def test_demo_prompts_look_different(tmp_path):
    frames = []
    for seed in (demo_media.prompt_seed("demo-01"), demo_media.prompt_seed("demo-02")):
        path = tmp_path / f"{seed}.mp4"
        demo_media.render_demo_video(path, prompt_text="x", style="static", seed=seed, seconds=0.25,
                                     size=(96, 64))
        frames.append(decode_gray(path)[0])
    assert np.abs(frames[0] - frames[1]).mean() > 5


def test_demo_caption_wraps_long_prompts():
    font = demo_media._font(16)
    lines = demo_media._wrap("word " * 200, font, 300, max_lines=3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 300 for line in lines)
    assert demo_media._wrap("short prompt", font, 300, max_lines=3) == ["short prompt"]


def test_demo_font_falls_back_to_pillow_default(monkeypatch):
    monkeypatch.setattr(demo_media, "FONT_CANDIDATES", ())
    monkeypatch.setattr(demo_media, "_fc_match", lambda family: None)

    real_truetype = demo_media.ImageFont.truetype

    def no_system_fonts(font, *args, **kwargs):
        if isinstance(font, str | os.PathLike):  # Pillow's built-in font comes as bytes, not a path
            raise OSError("no fonts here")
        return real_truetype(font, *args, **kwargs)

    monkeypatch.setattr(demo_media.ImageFont, "truetype", no_system_fonts)
    demo_media._font.cache_clear()
    try:
        font = demo_media._font(17)
        assert font.getlength("abc") > 0
        rgb, alpha = demo_media._caption("a caption drawn without system fonts", 200, 120)
        assert rgb.shape[1] == 200 and alpha.max() == 1.0
    finally:
        demo_media._font.cache_clear()


def test_render_demo_video_rejects_bad_arguments(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="style"):
        demo_media.render_demo_video(out / "x.mp4", prompt_text="x", style="wobbly", seed=1)
    with pytest.raises(ValueError, match="even"):
        demo_media.render_demo_video(out / "x.mp4", prompt_text="x", style="static", seed=1, size=(101, 64))
    assert not out.exists()


def test_demo_catalogue_shape():
    ids = [p["prompt_id"] for p in demo_media.DEMO_PROMPTS]
    assert len(ids) >= 12 and len(set(ids)) == len(ids)
    for prompt in demo_media.DEMO_PROMPTS:
        assert prompt["prompt"].strip()
        assert prompt["tags"]["motion"] in {"fast", "slow"} and prompt["tags"]["category"]
    assert {p["tags"]["motion"] for p in demo_media.DEMO_PROMPTS} == {"fast", "slow"}
    assert set(demo_media.DEMO_GENERATORS.values()) == set(demo_media.STYLES)


def test_write_demo_manifest_renders_once_and_lists_every_clip(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_media, "DEMO_PROMPTS", demo_media.DEMO_PROMPTS[:2])
    rendered: list[Path] = []
    real_render = demo_media.render_demo_video

    def counting_render(dst, **kwargs):
        rendered.append(Path(dst))
        real_render(dst, **{**kwargs, "seconds": 0.5})

    monkeypatch.setattr(demo_media, "render_demo_video", counting_render)
    manifest = demo_media.write_demo_manifest(tmp_path / "demo")
    assert manifest == (tmp_path / "demo" / "manifest.jsonl").resolve()
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == 2 * 3 == len(rendered)
    assert {r["generator"] for r in rows} == set(demo_media.DEMO_GENERATORS)
    for row in rows:
        assert set(row) == {"prompt_id", "prompt", "generator", "video", "tags"}
        video = Path(row["video"])
        assert video.is_absolute() and video.is_file() and video.stat().st_size > 0
        assert media.needs_transcode(media.probe(video)) is None
    # Idempotent: a second run renders nothing and writes the same manifest.
    before = manifest.read_bytes()
    assert demo_media.write_demo_manifest(tmp_path / "demo") == manifest
    assert len(rendered) == 6 and manifest.read_bytes() == before
    # An empty (interrupted) file is rendered again.
    Path(rows[0]["video"]).write_bytes(b"")
    demo_media.write_demo_manifest(tmp_path / "demo")
    assert rendered[-1] == Path(rows[0]["video"]) and Path(rows[0]["video"]).stat().st_size > 0
