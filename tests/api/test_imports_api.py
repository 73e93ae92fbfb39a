"""Manifest upload over the API and the project page: roles, errors, the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import Membership, Pair, Video
from tests.factories import MembershipFactory, ProjectFactory, PromptFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


def _client(project, role: str | None) -> APIClient:
    client = APIClient()
    user = UserFactory()
    if role:
        MembershipFactory(project=project, user=user, role=role)
    client.force_authenticate(user)
    return client


def _upload(client, project, content: bytes, name: str = "m.csv"):
    return client.post(
        f"/api/v1/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def test_manager_uploads_and_reads_the_report(project):
    video = Path(settings.IMPORT_ROOTS[0]) / "a.mp4"
    video.write_bytes(b"x")
    client = _client(project, Membership.ROLE_MANAGER)
    body = f"prompt_id,prompt,generator,video\np1,cat,G,{video}\np2,dog,G,missing.mp4\n".encode()
    response = _upload(client, project, body)
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["created_rows"], report["error_rows"]) == (1, 1)
    assert report["row_errors"] == [{"row": 2, "field": "video", "message": "file not found: missing.mp4"}]
    detail = client.get(f"/api/v1/projects/{project.pk}/imports/{report['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == report["id"]
    listing = client.get(f"/api/v1/projects/{project.pk}/imports/")
    assert [j["id"] for j in listing.json()] == [report["id"]]


def test_refused_file_answers_400_with_reason(project):
    response = _upload(_client(project, Membership.ROLE_MANAGER), project, b"prompt_id,prompt\n1,x\n")
    assert response.status_code == 400 and "missing column(s) generator, video" in response.json()["error"]


def test_wrong_file_type(project):
    response = _upload(_client(project, Membership.ROLE_MANAGER), project, b"x", name="m.exe")
    assert response.status_code == 400 and "file" in response.json()


def test_upload_size_limit(project, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    response = _upload(_client(project, Membership.ROLE_MANAGER), project, b"prompt_id,prompt,generator,video\n")
    assert response.status_code == 413 and "limit" in str(response.json())  # too large: 413 (annotation.uploads)


@pytest.mark.parametrize("role", [Membership.ROLE_RATER, None])
def test_raters_and_outsiders_are_refused(project, role):
    client = _client(project, role)
    assert _upload(client, project, b"prompt_id,prompt,generator,video\n").status_code == 403
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 403
    assert client.post(f"/api/v1/projects/{project.pk}/pairs/generate/").status_code == 403


def test_anonymous_is_refused(project):
    response = APIClient().post(f"/api/v1/projects/{project.pk}/imports/")
    assert response.status_code == 401


def test_manager_of_another_project_is_refused(project):
    other = ProjectFactory()
    client = _client(other, Membership.ROLE_MANAGER)
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 403


def test_generate_pairs_endpoint(project):
    prompt_video = VideoFactory(project=project)
    VideoFactory(project=project, prompt=prompt_video.prompt)
    response = _client(project, Membership.ROLE_MANAGER).post(f"/api/v1/projects/{project.pk}/pairs/generate/")
    assert response.json() == {"created": 1}
    assert Pair.objects.filter(project=project).count() == 1


def test_project_page_for_managers_only(client, project):
    manager, rater = UserFactory(), UserFactory()
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER)
    VideoFactory(project=project, status=Video.STATUS_FAILED, error="corrupt")
    client.force_login(manager)
    page = client.get(f"/projects/{project.pk}/")
    assert page.status_code == 200 and b"Import a manifest" in page.content
    assert page.context["overview"]["videos"] == {"pending": 0, "ready": 0, "failed": 1}
    client.force_login(rater)
    assert client.get(f"/projects/{project.pk}/").status_code == 404


def test_token_auth(project):
    user = UserFactory(username="tok")
    MembershipFactory(project=project, user=user, role=Membership.ROLE_MANAGER)
    response = APIClient().post("/api/v1/auth/token/", {"username": "tok", "password": "pw"})
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get(f"/api/v1/projects/{project.pk}/imports/").status_code == 200
    assert APIClient().post("/api/v1/auth/token/", {"username": "tok", "password": "no"}).status_code == 400


def test_listing_imports_is_two_queries_and_matches_each_report(project):
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from annotation.models import ImportJob  # noqa: PLC0415
    from annotation.selectors.imports import import_report, import_summaries  # noqa: PLC0415

    jobs = [ImportJob.objects.create(project=project, file_name=f"m{i}.csv") for i in range(4)]
    for job, statuses in zip(jobs, [["ready", "ready"], ["failed"], [], ["pending", "ready"]], strict=True):
        for status in statuses:
            VideoFactory(prompt=PromptFactory(project=project), import_job=job, status=status,
                         error="bad" if status == "failed" else "")
    with CaptureQueriesContext(connection) as queries:
        summaries = import_summaries(project_id=project.pk)
    assert len(queries) == 2
    assert summaries == [import_report(job=job, max_rows=0) for job in ImportJob.objects.filter(project=project)]
    assert [s["media"] for s in summaries[::-1]] == [
        {"pending": 0, "ready": 2, "failed": 0}, {"pending": 0, "ready": 0, "failed": 1},
        {"pending": 0, "ready": 0, "failed": 0}, {"pending": 1, "ready": 1, "failed": 0},
    ]
