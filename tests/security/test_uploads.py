"""Upload limits on every import endpoint (manifests, judgments, scores) and on page requests:
size (413, before the body is read when Content-Length says so), name and content (400);
a refused file stores nothing."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from annotation.models import ImportJob, Judgment, Membership, Prompt, Video
from metrics.models import MetricScore
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["imports/", "judgments/import/", "scores/import/"]
GOOD = {
    "imports/": b"prompt_id,prompt,generator,video\n",
    "judgments/import/": b"prompt_id,generator_a,generator_b,rater,final_verdict\n",
    "scores/import/": b"prompt_id,generator,metric,value\n",
}


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def manager(project):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Membership.ROLE_MANAGER)
    return user


@pytest.fixture
def api(manager) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client


def _stored() -> tuple[int, ...]:
    return (ImportJob.objects.count(), Video.objects.count(), Prompt.objects.count(), Judgment.objects.count(),
            MetricScore.objects.count())


def _post(client, project, endpoint: str, content: bytes, name: str):
    return client.post(
        f"/api/v1/projects/{project.pk}/{endpoint}", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("sheet.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "the file is a ZIP archive (an .xlsx"),
        ("rows.csv", b"prompt_id,prompt\n\x00\x01\x02binary", "the file is binary, not CSV or JSON Lines text"),
        ("rows.jsonl", "{\"prompt\": \"caf\xe9\"}\n".encode("latin-1"), "the file is not UTF-8 text (invalid"),
        ("rows.csv.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 20, "expected a .csv, .jsonl, .ndjson, .json file"),
        ("rows.txt", b"prompt_id,prompt\n", "expected a .csv, .jsonl, .ndjson, .json file, got 'rows.txt'"),
        ("rows.csv", b"\xff\xfep\x00r\x00", "the file is UTF-16 text (save it as UTF-8)"),
        ("photo.json", b"\x89PNG\r\n\x1a\n\x00\x00", "the file is a PNG image"),
    ],
)
def test_wrong_type_is_refused_with_its_reason(api, project, endpoint, name, content, reason):
    before = _stored()
    response = _post(api, project, endpoint, content, name)
    assert response.status_code == 400, response.content
    assert any(message.startswith(reason) for message in response.json()["file"]), response.json()
    assert _stored() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_file_over_the_limit_is_413(api, project, endpoint, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    before = _stored()
    response = _post(api, project, endpoint, GOOD[endpoint] + b"x" * 1200, "big.csv")
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail == f"The file 'big.csv' is {len(GOOD[endpoint]) + 1200} bytes; the limit is 1000 bytes " \
                     "(IMPORT_MAX_UPLOAD_BYTES)."
    assert _stored() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_text_at_the_limit_is_read(api, project, endpoint, settings):
    """A UTF-8 file whose sniffed head ends inside a multi-byte character is still text."""
    from annotation.uploads import SNIFF_BYTES

    settings.IMPORT_MAX_UPLOAD_BYTES = 2 * SNIFF_BYTES
    header = GOOD[endpoint]
    filler = b"#" * (SNIFF_BYTES - len(header) - 1)
    content = header + filler + "é".encode() + b"\n"  # "é" straddles the sniffed boundary
    assert content[SNIFF_BYTES - 1 : SNIFF_BYTES + 1] == "é".encode()
    response = _post(api, project, endpoint, content, "edge.csv")
    assert response.status_code in (201, 400), response.content
    assert "file" not in response.json()  # not refused by the upload check (the importer read it)


def test_body_over_the_limit_is_refused_before_it_is_read(manager, project, settings):
    """Content-Length alone decides: the middleware answers 413 without parsing the body."""
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    client = APIClient()
    client.force_authenticate(manager)
    before = _stored()
    response = _post(client, project, "imports/", GOOD["imports/"] + b"x" * (70 * 1024), "m.csv")
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is {int(response.wsgi_request.META['CONTENT_LENGTH'])} bytes; the limit is "
        f"{1000 + 64 * 1024} bytes (IMPORT_MAX_UPLOAD_BYTES).",
        "code": "too_large",
    }
    assert not response.wsgi_request._read_started  # noqa: SLF001 - nothing of the body was read
    assert _stored() == before


def test_json_body_over_the_limit_is_413(settings):
    """Any non-multipart body (a rater's submit, a login form) is held to DATA_UPLOAD_MAX_MEMORY_SIZE."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = APIClient().post(
        "/api/v1/assignments/1/judgment/", json.dumps({"answers": {"x": "y" * 4096}}), content_type="application/json"
    )
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    from urllib.parse import urlencode

    form = urlencode({"username": "u" * 4096, "password": "p"})  # what a browser sends for the login form
    page = Client().post("/login/", form, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413
    assert page.content.decode().startswith("The request body is ")
    assert "(DATA_UPLOAD_MAX_MEMORY_SIZE)" in page.content.decode()


def test_project_page_upload_gets_the_same_answers(manager, project, settings):
    """The project page uploads through the API with the session and its CSRF token."""
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    page = Client(enforce_csrf_checks=True)
    page.force_login(manager)
    html = page.get(f"/projects/{project.pk}/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    url = f"/api/v1/projects/{project.pk}/imports/"
    wrong = page.post(url, {"file": SimpleUploadedFile("m.csv", b"PK\x03\x04zip")}, HTTP_X_CSRFTOKEN=token)
    assert wrong.status_code == 400 and wrong.json()["file"][0].startswith("the file is a ZIP archive")
    big = page.post(url, {"file": SimpleUploadedFile("m.csv", b"a,b\n" + b"x" * 2000)}, HTTP_X_CSRFTOKEN=token)
    assert big.status_code == 413 and "the limit is 1000 bytes" in big.json()["detail"]
    assert ImportJob.objects.count() == 0
