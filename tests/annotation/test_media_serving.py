"""Media bytes: Range requests (206 / 416), members only, never outside MEDIA_ROOT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from annotation.models import Membership
from annotation.range_files import parse_range
from tests.factories import MembershipFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40  # 10,240 bytes with recognisable content


@pytest.fixture
def video():
    rel = Path("browser/ab/file.mp4")
    path = Path(settings.MEDIA_ROOT) / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA)
    poster = Path(settings.MEDIA_ROOT) / "posters/ab/file.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"\xff\xd8jpeg")
    return VideoFactory(browser=str(rel), original=str(rel), poster="posters/ab/file.jpg")


@pytest.fixture
def member_client(client, video):
    user = UserFactory()
    MembershipFactory(project=video.project, user=user, role=Membership.ROLE_RATER)
    client.force_login(user)
    return client


def _url(video) -> str:
    return reverse("frontend:media-video", args=[video.public_id])


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_url_is_blind(video):
    url = _url(video)
    assert video.generator.name not in url and "file" not in url and str(video.public_id) in url


def test_full_file(member_client, video):
    response = member_client.get(_url(video))
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes" and response["Content-Type"] == "video/mp4"
    assert int(response["Content-Length"]) == len(DATA) and _body(response) == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, len(DATA) - 1), ("bytes=-500", len(DATA) - 500, len(DATA) - 1),
     ("bytes=10000-99999", 10000, len(DATA) - 1), ("bytes=5-5", 5, 5)],
)
def test_ranges(member_client, video, header, start, end):
    response = member_client.get(_url(video), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert int(response["Content-Length"]) == end - start + 1
    assert _body(response) == DATA[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_range(member_client, video, header):
    response = member_client.get(_url(video), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "garbage"])
def test_ignored_ranges_send_the_whole_file(member_client, video, header):
    response = member_client.get(_url(video), HTTP_RANGE=header)
    assert response.status_code == 200 and _body(response) == DATA


def test_parse_range_edges():
    assert parse_range("", 10) is None
    assert parse_range("bytes=0-0", 1) == (0, 0)
    assert parse_range("bytes=0-", 0) == "unsatisfiable"


def test_poster(member_client, video):
    response = member_client.get(reverse("frontend:media-poster", args=[video.public_id]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_anonymous_is_sent_to_login(client, video):
    response = client.get(_url(video))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_other_projects_users_get_404(client, video):
    outsider = UserFactory()
    MembershipFactory(user=outsider, role=Membership.ROLE_MANAGER)  # manager of another project
    client.force_login(outsider)
    assert client.get(_url(video)).status_code == 404


def test_unknown_video_404(member_client):
    assert member_client.get("/media/v/00000000-0000-0000-0000-000000000000.mp4").status_code == 404


@pytest.mark.parametrize("evil", ["../../../../etc/passwd", "/etc/passwd", "browser/../../outside.mp4"])
def test_stored_path_outside_media_root_is_refused(member_client, video, evil, tmp_path):
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    video.browser = evil
    video.save(update_fields=["browser"])
    assert member_client.get(_url(video)).status_code == 404


def test_symlink_out_of_media_root_is_refused(member_client, video, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"secret")
    link = Path(settings.MEDIA_ROOT) / "browser/ab/link.mp4"
    os.symlink(secret, link)
    video.browser = "browser/ab/link.mp4"
    video.save(update_fields=["browser"])
    assert member_client.get(_url(video)).status_code == 404


@pytest.mark.parametrize(
    "path", ["/media/v/..%2F..%2Fetc%2Fpasswd", "/media/v/../../etc/passwd", "/media/v/%2e%2e/settings.py"]
)
def test_traversal_urls_do_not_match(member_client, path):
    assert member_client.get(path).status_code == 404
