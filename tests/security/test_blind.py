"""Raters are blind: nothing a rater receives names a generator.

Real videos whose container and stream tags (title, comment, artist, handler name, chapter
title) and whose file paths carry distinctive generator names go through the real media
pipeline: one playable as is (H.264 MP4 with faststart), one remuxed (moov at the end), one
transcoded (VP9 WebM). Then a rater walks everything a rater can fetch: the home and rating
pages, every static file the rating page loads (ES module imports followed), the next /
submit / skip API responses until nothing is left, every video and poster URL (whole and by
Range, in Django and nginx serving modes), their headers (Content-Disposition!), the bytes
themselves and what ffprobe reads from them. No generator name may appear anywhere.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import ffmpeg
import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from annotation.media import identifying_tags
from annotation.models import Assignment, Membership, Video
from annotation.services.imports import manifest_import
from annotation.services.pairs import pairs_generate
from annotation.services.projects import project_create
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

GENERATORS = ("Zorblax-Prime-9", "Quillfeather-XL", "Mordant-Lumen")
KINDS = ("faststart_mp4", "late_moov_mp4", "vp9_webm")  # served as is / remuxed / transcoded


def _needles() -> list[bytes]:
    """Every way a name could show up in bytes: as is, lower/upper case, URL- or JSON-escaped, UTF-16."""
    out: list[bytes] = []
    for name in GENERATORS:
        for variant in {name, name.lower(), name.upper(), name.replace("-", "%2D"), name.replace("-", "_"),
                        name.split("-")[0]}:
            out += [variant.encode(), variant.encode("utf-16-le")]
    return out


def _find_names(blob: bytes | str, where: str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    lower = data.lower()
    return [f"{where}: {needle!r}" for needle in _needles() if needle.lower() in lower]


def _make_video(path: Path, kind: str, name: str, hue: int) -> Path:
    """A 1 s clip tagged with ``name`` everywhere a muxer keeps tags (made with the ffmpeg CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chapters = path.with_suffix(".chapters.txt")
    chapters.write_text(f";FFMETADATA1\ntitle={name}\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle={name}\n")
    tags = ["-metadata", f"title={name}", "-metadata", f"comment=made by {name}", "-metadata", f"artist={name}",
            "-metadata", f"description={name} v2", "-metadata:s:v:0", f"title={name} track",
            "-metadata:s:v:0", f"handler_name={name} handler"]
    codec = {
        "faststart_mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
        "late_moov_mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
        "vp9_webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
    }[kind]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=160x96:rate=24:duration=1,hue=h={hue}",
         "-i", str(chapters), "-map", "0:v", "-map_metadata", "1", "-map_chapters", "1",
         *tags, *codec, str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    chapters.unlink()
    assert _find_names(path.read_bytes(), "fixture"), "the fixture must carry the name for the test to mean anything"
    return path


@pytest.fixture
def blind_project(django_capture_on_commit_callbacks):
    project = project_create(name="Blind walk", overlap=1, instructions="Compare the two videos.")
    root = Path(settings.IMPORT_ROOTS[0])
    rows = ["prompt_id,prompt,generator,video"]
    for p, text in enumerate(["a heron lands on a pier", "steam rises from a cup"]):
        for g, (name, kind) in enumerate(zip(GENERATORS, KINDS, strict=True)):
            suffix = ".webm" if kind == "vp9_webm" else ".mp4"
            path = _make_video(root / name / f"{name}-p{p}{suffix}", kind, name, hue=40 * g + 10 * p)
            rows.append(f"p{p},{text},{name},{path}")
    with django_capture_on_commit_callbacks(execute=True):  # the media pipeline runs inline (eager)
        job = manifest_import(project=project, file_obj=__import__("io").BytesIO("\n".join(rows).encode()),
                              file_name="m.csv")
    assert job.created_rows == 6
    videos = list(Video.objects.filter(project=project))
    assert all(v.status == Video.STATUS_READY for v in videos), [(v.status, v.error) for v in videos]
    assert pairs_generate(project=project) == 6
    rater = UserFactory(username="blind-rater")
    MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER)
    return project, rater


def _headers_text(response) -> str:
    return "\n".join(f"{k}: {v}" for k, v in response.items())


def _static_closure(html: str) -> dict[str, bytes]:
    """Every static file the page loads: <link href>, <script src>, and ES module imports."""
    prefix = "/" + settings.STATIC_URL.lstrip("/")
    pending = [m for m in re.findall(r'(?:href|src)="([^"]+)"', html) if m.startswith(prefix)]
    seen: dict[str, bytes] = {}
    while pending:
        url = pending.pop()
        relative = url[len(prefix):]
        if relative in seen:
            continue
        found = finders.find(relative)
        assert found, f"the page loads {url}, which no static finder has"
        seen[relative] = Path(found).read_bytes()
        if relative.endswith(".js"):
            for spec in re.findall(rb'(?:import|from)\s*\(?\s*["\'](\.{1,2}/[^"\']+)["\']', seen[relative]):
                base = relative.rsplit("/", 1)[0]
                target = (Path(base) / spec.decode()).as_posix()
                parts: list[str] = []
                for part in target.split("/"):
                    if part == "..":
                        parts.pop()
                    elif part not in ("", "."):
                        parts.append(part)
                pending.append(prefix + "/".join(parts))
    return seen


def _ffprobe_json(data: bytes, tmp_path: Path, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    return ffmpeg.probe(str(path), v="error", show_chapters=None)


def test_nothing_a_rater_receives_names_a_generator(blind_project, tmp_path, settings):
    project, rater = blind_project
    client = Client()
    client.force_login(rater)
    found: list[str] = []
    media_urls: set[str] = set()

    home = client.get("/")
    found += _find_names(home.content, "home page") + _find_names(_headers_text(home), "home headers")
    page = client.get(f"/projects/{project.pk}/rate/")
    assert page.status_code == 200
    html = page.content.decode()
    found += _find_names(html, "rating page") + _find_names(_headers_text(page), "rating page headers")
    assets = _static_closure(html)
    assert any(a.endswith("rater/main.js") for a in assets) and any(a.endswith("rater/api.js") for a in assets)
    for name, body in assets.items():
        found += _find_names(body, f"static {name}")

    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    api = {"content_type": "application/json", "HTTP_X_CSRFTOKEN": csrf}
    next_url = re.search(r'data-next-url="([^"]+)"', html).group(1)
    judged = skipped = 0
    for step in range(20):  # 6 pairs: bounded
        lease = client.post(next_url, **api)
        found += _find_names(_headers_text(lease), f"next headers #{step}")
        if lease.status_code == 204:
            break
        assert lease.status_code == 200, lease.content
        found += _find_names(lease.content, f"next #{step}")
        body = lease.json()
        media_urls |= {body["left"]["video"], body["right"]["video"], body["left"]["poster"], body["right"]["poster"]}
        if body["prefetch"]:
            media_urls |= set(body["prefetch"]["videos"]) | {p for p in body["prefetch"]["posters"] if p}
        reload = client.post(next_url, **api)  # a reload gives the same lease back
        found += _find_names(reload.content, f"next (reload) #{step}")
        if step % 3 == 2:
            done = client.post(body["skip_url"], {"reason": Assignment.SKIP_REASONS[0][0], "note": ""}, **api)
            skipped += 1
        else:
            answers = {q["key"]: q["choices"][0] for q in body["questions"]}
            done = client.post(body["judgment_url"], {"answers": answers, "duration_ms": 5000}, **api)
            judged += 1
        assert done.status_code == 200, done.content
        found += _find_names(done.content, f"answer #{step}") + _find_names(_headers_text(done), f"answer hdr #{step}")
    assert (judged, skipped) == (4, 2)

    assert len([u for u in media_urls if u.endswith(".mp4")]) == 6
    for url in sorted(u for u in media_urls if u):
        found += _find_names(url, "media URL")
        for mode in ("django", "nginx"):
            settings.MEDIA_SERVE = mode
            for extra in ({}, {"HTTP_RANGE": "bytes=0-99"}):
                response = client.get(url, **extra)
                assert response.status_code in (200, 206), (url, response.status_code)
                found += _find_names(_headers_text(response), f"{mode} headers of {url} {extra}")
                disposition = response.get("Content-Disposition", "")
                assert "filename" not in disposition.lower(), disposition
        settings.MEDIA_SERVE = "django"
        data = b"".join(client.get(url).streaming_content)
        found += _find_names(data, f"bytes of {url}")
        if url.endswith(".mp4"):
            probed = _ffprobe_json(data, tmp_path, "served.mp4")
            found += _find_names(json.dumps(probed), f"ffprobe of {url}")
            assert identifying_tags(probed) == (), (url, identifying_tags(probed))
    assert found == []
