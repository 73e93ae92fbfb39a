"""The manager API: who may call what, projects, listings, labels, analysis, scores, imports."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import ExportJob, Judgment, Membership, Project, Question
from tests.api._manager_data import EXPECTED, judge, judged_project
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def data():
    return judged_project()


# Every manager endpoint of a project: (method, path template, body). {p}: project, {pair}, {job}.
PROJECT_ENDPOINTS = [
    ("get", "/api/v1/projects/{p}/", None),
    ("patch", "/api/v1/projects/{p}/", {"overlap": 4}),
    ("get", "/api/v1/projects/{p}/generators/", None),
    ("get", "/api/v1/projects/{p}/prompts/", None),
    ("get", "/api/v1/projects/{p}/videos/", None),
    ("get", "/api/v1/projects/{p}/pairs/", None),
    ("get", "/api/v1/pairs/{pair}/", None),
    ("get", "/api/v1/projects/{p}/judgments/", None),
    ("post", "/api/v1/projects/{p}/judgments/import/", "file"),
    ("get", "/api/v1/projects/{p}/labels/", None),
    ("get", "/api/v1/projects/{p}/analysis/?bootstrap=0", None),
    ("get", "/api/v1/projects/{p}/scores/", None),
    ("post", "/api/v1/projects/{p}/scores/import/", "file"),
    ("get", "/api/v1/projects/{p}/exports/?kind=raw", None),
    ("get", "/api/v1/projects/{p}/exports/jobs/", None),
    ("get", "/api/v1/projects/{p}/exports/jobs/{job}/", None),
    ("get", "/api/v1/projects/{p}/exports/jobs/{job}/download/", None),
]


def _call(client: APIClient, method: str, template: str, body, data):
    job = ExportJob.objects.create(project=data.project, kind="raw", format="jsonl")
    path = template.format(p=data.project.pk, pair=data.pairs[0].pk, job=job.pk)
    if body == "file":
        return getattr(client, method)(path, {"file": SimpleUploadedFile("x.csv", b"a,b\n")}, format="multipart")
    return getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)


@pytest.mark.parametrize(("method", "template", "body"), PROJECT_ENDPOINTS)
def test_raters_other_managers_and_anonymous_are_refused(data, method, template, body):
    other = ProjectFactory(name="Other")
    other_manager = UserFactory()
    MembershipFactory(project=other, user=other_manager, role=Membership.ROLE_MANAGER)
    for user, expected in ((data.raters[0], 403), (other_manager, 403), (None, 401)):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        response = _call(client, method, template, body, data)
        assert response.status_code == expected, (template, user, response.content[:200])
    assert Project.objects.get(pk=data.project.pk).overlap == 3  # the refused PATCH changed nothing


@pytest.mark.parametrize(("method", "template"), sorted({(m, t) for m, t, _ in PROJECT_ENDPOINTS if "{p}" in t}))
def test_unknown_project_is_forbidden_like_another_one(data, method, template):
    response = getattr(data.client(), method)(template.format(p=999_999, pair=1, job=1))
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "template", "body"), PROJECT_ENDPOINTS)
def test_the_manager_is_served(data, method, template, body):
    response = _call(data.client(), method, template, body, data)
    # the dummy uploads are refused as files (400), the unfinished job's download is 404
    assert response.status_code in (200, 201, 400, 404), (template, response.status_code)
    if body is None and "download" not in template:
        assert response.status_code == 200, (template, response.content[:300])


def test_token_auth_beside_session(data):
    response = data.token_client().get(f"/api/v1/projects/{data.project.pk}/generators/")
    assert response.status_code == 200
    assert [g["name"] for g in response.json()] == ["alpha", "beta", "gamma"]


# --- projects -----------------------------------------------------------------------------


def test_projects_list_shows_only_managed(data):
    ProjectFactory(name="Not mine")
    response = data.client().get("/api/v1/projects/")
    assert response.status_code == 200
    assert [p["name"] for p in response.json()] == ["Judged"]
    assert "final_verdict" in [q["key"] for q in response.json()[0]["questions"]]


def test_plain_users_and_raters_cannot_list_or_create(data):
    for user in (UserFactory(), data.raters[0]):
        client = APIClient()
        client.force_authenticate(user)
        assert client.get("/api/v1/projects/").status_code == 403
        assert client.post("/api/v1/projects/", {"name": "x"}, format="json").status_code == 403
    assert APIClient().get("/api/v1/projects/").status_code == 401


def test_staff_creates_a_project_and_becomes_its_manager():
    staff = UserFactory(is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.post("/api/v1/projects/", {"name": "New", "overlap": 5}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["overlap"] == 5 and len(body["questions"]) == 6
    assert Membership.objects.get(project_id=body["id"], user=staff).role == Membership.ROLE_MANAGER
    assert client.get(f"/api/v1/projects/{body['id']}/").status_code == 200
    again = client.post("/api/v1/projects/", {"name": "New"}, format="json")
    assert again.status_code == 400 and "name" in again.json()


def test_a_manager_creates_with_a_custom_rubric(data):
    rubric = [{"key": "better", "text": "Which is better?", "allowed": ["a", "b"]}]
    response = data.client().post("/api/v1/projects/", {"name": "Custom", "questions": rubric}, format="json")
    assert response.status_code == 201, response.content
    assert [(q["key"], q["allowed"]) for q in response.json()["questions"]] == [("better", ["a", "b"])]
    bad = data.client().post("/api/v1/projects/", {"name": "Bad", "questions": [{"key": "x", "text": "t",
                                                                                 "allowed": ["a", "tie"]}]},
                             format="json")
    assert bad.status_code == 400


def test_update_settings_and_upsert_rubric(data):
    client = data.client()
    url = f"/api/v1/projects/{data.project.pk}/"
    response = client.patch(url, {"overlap": 5, "instructions": "Be careful.", "questions": [
        {"key": "final_verdict", "text": "Overall?"}, {"key": "sound", "text": "Which sounds better?"}]},
        format="json")
    assert response.status_code == 200, response.content
    project = Project.objects.get(pk=data.project.pk)
    assert (project.overlap, project.instructions) == (5, "Be careful.")
    assert Question.objects.get(project=project, key="final_verdict").text == "Overall?"
    assert Question.objects.filter(project=project).count() == 7
    refused = client.patch(url, {"questions": [{"key": "final_verdict", "allowed": ["a", "b"]}]}, format="json")
    assert refused.status_code == 400 and "questions" in refused.json()
    assert client.patch(url, {"overlap": 0}, format="json").status_code == 400


# --- catalog ------------------------------------------------------------------------------


def test_prompts_are_cursor_paginated(data):
    client = data.client()
    first = client.get(f"/api/v1/projects/{data.project.pk}/prompts/?page_size=3").json()
    assert [p["external_id"] for p in first["results"]] == ["prompt-0", "prompt-1", "prompt-2"]
    second = client.get(first["next"]).json()
    assert [p["external_id"] for p in second["results"]] == ["prompt-3"] and second["next"] is None
    search = client.get(f"/api/v1/projects/{data.project.pk}/prompts/?search=prompt-2").json()
    assert [p["external_id"] for p in search["results"]] == ["prompt-2"]


def test_videos_carry_their_metric_scores(data, django_assert_max_num_queries):
    from metrics.models import MetricScore

    video = data.pairs[0].video_a
    MetricScore.objects.create(video=video, metric="ext_quality", version="external", value=0.7,
                               source=MetricScore.SOURCE_EXTERNAL)
    client = data.client()
    with django_assert_max_num_queries(8):
        response = client.get(f"/api/v1/projects/{data.project.pk}/videos/?page_size=100")
    rows = {v["id"]: v for v in response.json()["results"]}
    assert len(rows) == 12
    assert [(s["metric"], s["value"]) for s in rows[video.pk]["scores"]] == [("ext_quality", 0.7)]
    assert rows[video.pk]["url"].endswith(f"{video.public_id}.mp4") and rows[video.pk]["generator"] == "alpha"
    only = client.get(f"/api/v1/projects/{data.project.pk}/videos/?generator=beta").json()["results"]
    assert {v["generator"] for v in only} == {"beta"}


def test_pairs_listing_and_detail(data):
    client = data.client()
    listing = client.get(f"/api/v1/projects/{data.project.pk}/pairs/?generator=gamma&page_size=100").json()
    assert len(listing["results"]) == 8
    assert all("gamma" in (p["generator_a"], p["generator_b"]) for p in listing["results"])
    pair = data.pairs[1]
    detail = client.get(f"/api/v1/pairs/{pair.pk}/").json()
    assert detail["video_a"]["id"] == pair.video_a_id and detail["prompt_text"].startswith('a "fox"')
    assert (detail["generator_a"], detail["generator_b"]) == ("alpha", "gamma")
    assert client.get("/api/v1/pairs/999999/").status_code == 403  # unknown: like another project's
    admin = APIClient()
    admin.force_authenticate(UserFactory(is_superuser=True, is_staff=True))
    assert admin.get("/api/v1/pairs/999999/").status_code == 404


# --- labels and analysis ------------------------------------------------------------------


def _labels(data, query: str = "") -> dict[int, dict]:
    response = data.client().get(f"/api/v1/projects/{data.project.pk}/labels/?question=final_verdict{query}")
    assert response.status_code == 200, response.content
    index = {pair.pk: i for i, pair in enumerate(data.pairs)}
    return {index[row["pair"]]: row for row in response.json()["results"]}


def test_labels_majority_with_exact_splits_undecided(data):
    rows = _labels(data)
    assert {i: row["label"] for i, row in rows.items()} == EXPECTED
    assert rows[0]["votes"] == {"a": 3, "tie": 0, "b": 0} and rows[0]["agreement"] == 1.0 and rows[0]["unanimous"]
    assert rows[1]["agreement"] == pytest.approx(1 / 3) and rows[1]["confidence"] == pytest.approx(2 / 3)
    assert rows[2]["label"] is None and rows[2]["confidence"] is None
    assert rows[0]["generator_a"] == "alpha" and rows[0]["prompt_id"] == "prompt-0"


def test_labels_include_excluded_and_dawid_skene(data):
    with_excluded = _labels(data, "&include_excluded=true")
    assert with_excluded[0]["n"] == 4 and with_excluded[2]["label"] == "b" and with_excluded[1]["label"] is None
    ds = _labels(data, "&aggregation=dawid_skene")
    assert set(ds[0]["probabilities"]) == {"a", "tie", "b"} and ds[0]["label"] == "a"
    assert ds[0]["majority"] == "a"


def test_labels_of_every_question_paginate(data):
    client = data.client()
    url = f"/api/v1/projects/{data.project.pk}/labels/?limit=5"
    first = client.get(url).json()
    assert first["count"] == 12 and len(first["results"]) == 5  # 6 pairs x 2 answered questions
    assert {r["question"] for r in client.get(f"{url}&offset=0&limit=100").json()["results"]} == {
        "visual_appeal", "final_verdict"}
    assert client.get(f"/api/v1/projects/{data.project.pk}/labels/?question=nope").status_code == 400


def test_analysis_is_cached_and_served_stale_until_refreshed(data, django_capture_on_commit_callbacks):
    from annotation.services.dashboard import dashboard_invalidate

    client = data.client()
    url = f"/api/v1/projects/{data.project.pk}/analysis/?bootstrap=10"
    first = client.get(url).json()
    assert first["cached"] is False and first["stale"] is False  # nothing was cached: computed here
    summary = first["analysis"]["summary"]
    assert summary["n_raters"] == 3  # the excluded rater is left out, and named
    assert first["excluded_raters"] == [{"id": data.raters[3].pk, "name": data.raters[3].username}]
    assert first["analysis"]["questions"]["final_verdict"]["n_judgments"] == 18 == first["n_judgments"]
    again = client.get(url).json()
    assert again["cached"] is True and again["computed_at"] == first["computed_at"]
    with django_capture_on_commit_callbacks(execute=True):
        judge(data.pairs[6], data.raters[0], {"final_verdict": "a"})
        dashboard_invalidate(project_id=data.project.pk)  # as judgment_submit does
    stale = client.get(url).json()  # the last result, marked stale; a refresh is requested
    assert stale["stale"] is True and stale["refreshing"] is True and stale["cached"] is True
    assert stale["analysis"]["questions"]["final_verdict"]["n_judgments"] == 18
    fresh = client.get(url).json()  # tasks run inline in tests: the refresh has run
    assert fresh["stale"] is False and fresh["analysis"]["questions"]["final_verdict"]["n_judgments"] == 19


# --- scores and imports -------------------------------------------------------------------


def test_scores_read_and_import(data):
    client = data.client()
    body = b"prompt_id,generator,metric,value\nprompt-0,alpha,aesthetic,0.5\nprompt-0,nobody,aesthetic,0.1\n"
    response = client.post(f"/api/v1/projects/{data.project.pk}/scores/import/",
                           {"file": SimpleUploadedFile("s.csv", body)}, format="multipart")
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["created_rows"], report["error_rows"]) == (1, 1)
    listing = client.get(f"/api/v1/projects/{data.project.pk}/scores/?metric=aesthetic").json()["results"]
    assert [(s["prompt_id"], s["generator"], s["value"]) for s in listing] == [("prompt-0", "alpha", 0.5)]


def test_judgments_import_over_the_api(data):
    body = b"prompt_id,generator_a,generator_b,rater,final_verdict\nprompt-3,beta,alpha,ext-1,a\nprompt-3,x,y,r,a\n"
    response = data.client().post(f"/api/v1/projects/{data.project.pk}/judgments/import/",
                                  {"file": SimpleUploadedFile("j.csv", body)}, format="multipart")
    assert response.status_code == 201, response.content
    assert (response.json()["created_rows"], response.json()["error_rows"]) == (1, 1)
    stored = Judgment.objects.get(project=data.project, source=Judgment.SOURCE_IMPORT)
    assert stored.answers == {"final_verdict": "b"}  # beta vs alpha stored canonically: alpha is A
    refused = data.client().post(f"/api/v1/projects/{data.project.pk}/judgments/import/",
                                 {"file": SimpleUploadedFile("j.csv", b"prompt_id\n")}, format="multipart")
    assert refused.status_code == 400
