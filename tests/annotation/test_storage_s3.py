"""MEDIA_STORAGE=s3 against a real S3-compatible HTTP endpoint on loopback (moto's server mode;
boto3 and the browser-side requests speak HTTP to it): upload -> process -> serve (presigned
redirect, Range GET on the endpoint) -> metrics read, plus the failure modes."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from annotation.models import Membership, Video
from annotation.services.videos import TransientMediaError, video_process
from annotation.storage import media_key_check, media_signed_url
from metrics.models import MetricScore
from metrics.services import metric_scores_compute
from tests import media_fixtures as mf
from tests.factories import MembershipFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

KEY_ID, SECRET = "test-key-id", "test-secret"  # moto accepts any; nothing here is a real credential


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    port = _port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _options(endpoint_url: str, bucket: str) -> dict:
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url,
        "region_name": "us-east-1",
        "addressing_style": "path",
        "signature_version": "s3v4",
        "access_key": KEY_ID,
        "secret_key": SECRET,
        "querystring_auth": True,
        "querystring_expire": 600,
        "file_overwrite": True,
        "default_acl": None,
    }


def _client(endpoint_url: str):
    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


@pytest.fixture
def s3(settings, endpoint, tmp_path):
    """s3 mode with a fresh bucket; yields the boto3 client and the bucket name."""
    bucket = f"vj-{uuid.uuid4().hex[:12]}"
    client = _client(endpoint)
    client.create_bucket(Bucket=bucket)
    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_S3_BUCKET = bucket
    settings.MEDIA_URL_EXPIRES = 600
    settings.MEDIA_WORK_DIR = str(tmp_path / "scratch")
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _options(endpoint, bucket)},
    }
    return client, bucket


def _keys(client, bucket: str) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _local_files() -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def _pending(source: Path, **fields) -> Video:
    return VideoFactory(status=Video.STATUS_PENDING, source=str(source), fps=None, width=None, height=None,
                        duration=None, **fields)


def test_upload_process_serve_and_read_metrics_through_the_bucket(s3, client):
    s3_client, bucket = s3
    source = mf.make_vp9_webm(Path(settings.IMPORT_ROOTS[0]) / "clip.webm", seconds=1)
    video = video_process(video_id=_pending(source).pk)

    # Processed: originals, the browser transcode and the poster are objects; nothing stays local.
    assert video.status == Video.STATUS_READY and video.transcoded, video.error
    assert _keys(s3_client, bucket) == {video.original, video.browser, video.poster}
    assert video.original.startswith("originals/") and video.original.endswith(".webm")
    assert s3_client.head_object(Bucket=bucket, Key=video.browser)["ContentType"] == "video/mp4"
    assert s3_client.head_object(Bucket=bucket, Key=video.poster)["ContentType"] == "image/jpeg"
    assert _local_files() == []
    assert list(Path(settings.MEDIA_WORK_DIR).iterdir()) == []
    assert (video.width, video.height) == (160, 96) and video.duration == pytest.approx(1.0, abs=0.1)

    # Served: after the permission check, a redirect to a presigned URL on the endpoint...
    rater = UserFactory()
    MembershipFactory(project=video.project, user=rater, role=Membership.ROLE_RATER)
    client.force_login(rater)
    response = client.get(reverse("frontend:media-video", args=[video.public_id]))
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    assert location.startswith(f"{settings.STORAGES['media']['OPTIONS']['endpoint_url']}/{bucket}/{video.browser}?")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=600" in location

    # ...where the browser's Range request gets its 206 from the bucket.
    stored = s3_client.get_object(Bucket=bucket, Key=video.browser)["Body"].read()
    range_request = urllib.request.Request(location, headers={"Range": "bytes=10-109"})  # noqa: S310 (http, loopback)
    ranged = urllib.request.urlopen(range_request, timeout=10)  # noqa: S310
    assert ranged.status == 206
    assert ranged.headers["Content-Range"] == f"bytes 10-109/{len(stored)}"
    assert ranged.headers["Content-Type"] == "video/mp4"
    assert ranged.read() == stored[10:110]
    poster = client.get(reverse("frontend:media-poster", args=[video.public_id]))
    assert poster.status_code == 302 and f"/{bucket}/{video.poster}?" in poster["Location"]

    # Metrics read the video from the bucket (a scratch copy for the decode only).
    report = metric_scores_compute(video_ids=[video.pk], metric_names=["temporal_flickering"], workers=1)
    score = MetricScore.objects.get(video=video, metric="temporal_flickering")
    assert report["stored"] == 1 and score.status == MetricScore.STATUS_OK, score.error
    assert 0.0 <= score.value <= 1.0
    assert _local_files() == [] and list(Path(settings.MEDIA_WORK_DIR).iterdir()) == []


def test_only_members_are_redirected_to_the_bucket(s3, client):
    source = mf.make_h264_mp4(Path(settings.IMPORT_ROOTS[0]) / "clip.mp4")
    video = video_process(video_id=_pending(source).pk)
    url = reverse("frontend:media-video", args=[video.public_id])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("frontend:login"))
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404


def test_a_rerun_reuses_the_stored_objects(s3):
    s3_client, bucket = s3
    source = mf.make_odd_size_mp4(Path(settings.IMPORT_ROOTS[0]) / "odd.mp4")
    first = video_process(video_id=_pending(source).pk)
    before = {key: s3_client.head_object(Bucket=bucket, Key=key)["ETag"] for key in _keys(s3_client, bucket)}
    # The same bytes again (another generator): content-addressed, so nothing new is uploaded.
    second = video_process(video_id=_pending(source, prompt=first.prompt).pk)
    assert second.status == Video.STATUS_READY
    assert (second.original, second.browser, second.poster) == (first.original, first.browser, first.poster)
    after = {key: s3_client.head_object(Bucket=bucket, Key=key)["ETag"] for key in _keys(s3_client, bucket)}
    assert after == before and len(after) == 3
    assert (second.width, second.height) == (first.width, first.height)  # read back from the bucket


def test_a_bad_video_fails_with_ffmpegs_reason_and_uploads_nothing_else(s3):
    s3_client, bucket = s3
    source = mf.make_text_file(Path(settings.IMPORT_ROOTS[0]) / "notes.mp4")
    video = video_process(video_id=_pending(source).pk)
    assert video.status == Video.STATUS_FAILED and "not a video" in video.error
    assert all(key.startswith("originals/") for key in _keys(s3_client, bucket))
    assert _local_files() == []


def test_an_unreachable_bucket_is_retried_and_loses_nothing(s3, settings):
    closed = f"http://127.0.0.1:{_port()}"
    media = settings.STORAGES["media"]
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {**media, "OPTIONS": {**media["OPTIONS"], "endpoint_url": closed}},
    }
    source = mf.make_h264_mp4(Path(settings.IMPORT_ROOTS[0]) / "clip.mp4")
    pending = _pending(source)
    with pytest.raises(TransientMediaError, match="failed"):
        video_process(video_id=pending.pk)
    pending.refresh_from_db()
    assert pending.status == Video.STATUS_PENDING and pending.error == ""  # left for the retry
    assert source.is_file()


def test_a_missing_object_fails_the_metrics_with_the_reason(s3):
    video = VideoFactory(browser="browser/zz/gone.mp4", original="originals/zz/gone.mp4")
    metric_scores_compute(video_ids=[video.pk], metric_names=["temporal_flickering"], workers=1)
    score = MetricScore.objects.get(video=video, metric="temporal_flickering")
    assert score.status == MetricScore.STATUS_FAILED
    assert "no object 'browser/zz/gone.mp4'" in score.error and score.details["stage"] == "fetch"


def test_presigned_urls_use_the_public_endpoint_when_set(s3, settings):
    _, bucket = s3
    media = settings.STORAGES["media"]
    settings.STORAGES = {
        **settings.STORAGES,
        "media_public": {**media, "OPTIONS": {**media["OPTIONS"], "endpoint_url": "https://media.example.org"}},
    }
    url = media_signed_url(key="browser/ab/x.mp4", content_type="video/mp4")
    assert url.startswith(f"https://media.example.org/{bucket}/browser/ab/x.mp4?")
    assert "response-content-type=video%2Fmp4" in url


@pytest.mark.parametrize("key", ["", "../etc/passwd", "/abs/x.mp4", "a/../../b", "a//b", "a\\b", "a/./b", "a\x00b"])
def test_keys_that_could_escape_are_refused(key):
    with pytest.raises(ValueError, match="invalid media key"):
        media_key_check(key)


def test_a_stored_key_with_traversal_is_never_signed(s3, client):
    video = VideoFactory(browser="../secrets/x.mp4")
    rater = UserFactory()
    MembershipFactory(project=video.project, user=rater, role=Membership.ROLE_RATER)
    client.force_login(rater)
    assert client.get(reverse("frontend:media-video", args=[video.public_id])).status_code == 404


def test_the_bucket_refuses_unsigned_requests_for_objects_it_does_not_have(s3):
    # The Range check above is meaningful: the endpoint really answers per object.
    url = media_signed_url(key="browser/zz/none.mp4")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 (the presigned http URL, loopback)
    assert caught.value.code == 404
