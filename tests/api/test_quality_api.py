"""Quality control over the API: gold answers on pairs, quality settings on projects, the raters
report and pause/resume/exclude/include, the crowd quota, blind gold leases, roles everywhere."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from analysis import analyze
from annotation.models import Assignment, Judgment, Membership, Pair, Project
from annotation.selectors.labels import judgments_frame
from annotation.services import assignments as assignments_service
from tests.api._manager_data import judged_project
from tests.api.test_rater_api import _client, _next, _submit
from tests.factories import ALL_LEFT, MembershipFactory, ProjectFactory, UserFactory, make_pairs, make_rater

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def data():
    return judged_project()


def _gold_everything(monkeypatch, value: bool) -> None:
    """Make every lease of the test a gold draw (True) or a normal one (False)."""
    monkeypatch.setattr(assignments_service, "gold_draw", lambda *, project: value)


# --- gold answers on pairs ------------------------------------------------------------------


def test_a_manager_marks_a_pair_gold_and_the_listings_show_it(data):
    client, pair = data.client(), data.pairs[0]
    url = f"/api/v1/pairs/{pair.pk}/"
    response = client.patch(url, {"gold_answers": {"final_verdict": "a|tie", "visual_appeal": ["b"]}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["is_gold"] is True
    assert body["gold_answers"] == {"final_verdict": ["a", "tie"], "visual_appeal": ["b"]}
    listed = client.get(f"/api/v1/projects/{data.project.pk}/pairs/?is_gold=true").json()["results"]
    assert [(p["id"], p["gold_answers"]) for p in listed] == [(pair.pk, body["gold_answers"])]
    assert client.patch(url, {"gold_answers": None}, format="json").json()["is_gold"] is False
    assert Pair.objects.get(pk=pair.pk).gold_answers == {}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"gold_answers": {"final_verdit": "a"}}, "final_verdit"),
        ({"gold_answers": {"final_verdict": "left"}}, "final_verdict"),
        ({"gold_answers": ["a"]}, "gold_answers"),
        ({"gold_answers": "a"}, "gold_answers"),
    ],
)
def test_bad_gold_answers_answer_400_naming_the_key_and_change_nothing(data, body, key):
    pair = data.pairs[0]
    response = data.client().patch(f"/api/v1/pairs/{pair.pk}/", body, format="json")
    assert response.status_code == 400
    assert key in response.json()["gold_answers"], response.json()
    assert not Pair.objects.get(pk=pair.pk).is_gold


def test_gold_answers_need_the_field(data):
    response = data.client().patch(f"/api/v1/pairs/{data.pairs[0].pk}/", {}, format="json")
    assert response.status_code == 400 and "gold_answers" in response.json()


def test_gold_import_over_the_api(data):
    text = ("prompt_id,generator_a,generator_b,final_verdict\n"
            "prompt-0,alpha,beta,a\nprompt-0,beta,gamma,tie|b\nx,alpha,beta,a\n")
    upload = SimpleUploadedFile("gold.csv", text.encode())
    response = data.client().post(f"/api/v1/projects/{data.project.pk}/pairs/gold/import/", {"file": upload},
                                  format="multipart")
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["kind"], report["created_rows"], report["error_rows"]) == ("gold", 2, 1)
    assert report["row_errors"][0]["row"] == 3
    refused = data.client().post(
        f"/api/v1/projects/{data.project.pk}/pairs/gold/import/",
        {"file": SimpleUploadedFile("gold.csv", b"prompt_id,generator_a,generator_b,oops\nprompt-1,alpha,beta,a\n")},
        format="multipart",
    )
    assert refused.status_code == 400 and "oops" in refused.json()["error"]
    assert Pair.objects.filter(project=data.project, is_gold=True).count() == 2


# --- project settings -----------------------------------------------------------------------


def test_quality_and_quota_settings_read_and_update(data):
    client, url = data.client(), f"/api/v1/projects/{data.project.pk}/"
    before = client.get(url).json()
    assert (before["gold_rate"], before["gold_min"], before["gold_accuracy_threshold"], before["too_fast_seconds"]) == (
        0.1, 5, 0.7, 4.0)
    assert (before["rater_quota"], before["completion_code"], before["completion_url"]) == (None, "", "")
    changes = {"gold_rate": 0.2, "gold_min": 8, "gold_accuracy_threshold": 0.8, "too_fast_seconds": 6.5,
               "rater_quota": 50, "completion_code": "C0DE", "completion_url": "https://example.org/done?cc=C0DE"}
    response = client.patch(url, changes, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in changes} == changes
    project = Project.objects.get(pk=data.project.pk)
    assert {k: getattr(project, k) for k in changes} == changes
    assert client.patch(url, {"rater_quota": None}, format="json").json()["rater_quota"] is None


@pytest.mark.parametrize(
    "changes",
    [
        {"gold_rate": 1.5}, {"gold_rate": -0.1}, {"gold_min": 0}, {"gold_accuracy_threshold": 2},
        {"too_fast_seconds": -1}, {"rater_quota": 0}, {"completion_url": "javascript:alert(1)"},
        {"completion_url": "ftp://example.org/x"}, {"completion_code": "x" * 101}, {"gold_rate": "often"},
    ],
)
def test_bad_settings_answer_400_and_change_nothing(data, changes):
    url = f"/api/v1/projects/{data.project.pk}/"
    response = data.client().patch(url, {**changes, "overlap": 5}, format="json")
    assert response.status_code == 400 and set(changes) <= set(response.json()), response.json()
    project = Project.objects.get(pk=data.project.pk)
    assert (project.overlap, project.gold_rate, project.rater_quota, project.completion_url) == (3, 0.1, None, "")


# --- raters: report and actions -------------------------------------------------------------


def test_the_raters_list_carries_the_quality_figures(data):
    Judgment.objects.filter(rater=data.raters[0]).update(flags=["too_fast"], duration_ms=2000)
    rows = {r["rater_id"]: r for r in data.client().get(f"/api/v1/projects/{data.project.pk}/raters/").json()}
    assert set(rows) == {r.pk for r in data.raters}
    first = rows[data.raters[0].pk]
    assert first["id"] == first["rater_id"] and first["judgments"] == 6
    assert (first["flagged_judgments"], first["too_fast_judgments"], first["median_seconds"]) == (6, 6, 2.0)
    assert rows[data.raters[3].pk]["excluded"] is True
    expected = {"paused", "excluded", "gold_accuracy", "p_left", "p_left_p_value", "loo_agreement", "flags",
                "median_seconds", "gold_judged", "gold_correct", "judged", "skipped", "has_lease", "paused_reason"}
    assert expected <= set(first)


def test_pause_resume_exclude_include_over_the_api(data, monkeypatch):
    _gold_everything(monkeypatch, False)
    project = data.project
    rater = make_rater(project)
    make_pairs(project, 2)
    rater_client, manager = _client(rater), data.client()
    base = f"/api/v1/projects/{project.pk}/raters/{rater.pk}/"
    lease = _next(rater_client, project).json()
    response = manager.post(base + "pause/", {"reason": "checking their work"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["paused"] is True and response.json()["paused_reason"] == "checking their work"
    # A paused rater gets nothing more from the API, with a calm message and no reason.
    refused = _next(rater_client, project)
    assert refused.status_code == 403 and refused.json()["code"] == "paused"
    assert "checking" not in refused.json()["detail"]
    assert not Assignment.objects.filter(rater=rater, holds_slot=True).exists()
    # The pair they were judging may still be submitted while it has room (their lease was given back).
    assert _submit(rater_client, lease["assignment"]).status_code == 200
    assert _next(rater_client, project).status_code == 403
    assert manager.post(base + "pause/", format="json").json()["paused_reason"] == "checking their work"
    resumed = manager.post(base + "resume/", format="json").json()
    assert resumed["paused"] is False and resumed["resumed_at"] is not None
    assert _next(rater_client, project).status_code == 200
    assert manager.post(base + "exclude/", format="json").json()["excluded"] is True
    assert Membership.objects.get(project=project, user=rater).excluded
    assert manager.post(base + "include/", format="json").json()["excluded"] is False


def test_rater_actions_404_for_a_user_who_is_not_a_rater_of_the_project(data):
    other = ProjectFactory(name="Other")
    elsewhere = make_rater(other)
    for user_id in (data.manager.pk, elsewhere.pk, 999_999):
        for action in ("pause", "resume", "exclude", "include"):
            response = data.client().post(f"/api/v1/projects/{data.project.pk}/raters/{user_id}/{action}/")
            assert response.status_code == 404, (user_id, action)
    assert not Membership.objects.filter(user=elsewhere, paused=True).exists()


def test_a_long_pause_reason_is_refused(data):
    url = f"/api/v1/projects/{data.project.pk}/raters/{data.raters[0].pk}/pause/"
    assert data.client().post(url, {"reason": "x" * 301}, format="json").status_code == 400
    assert not Membership.objects.get(project=data.project, user=data.raters[0]).paused


# --- exclusion in analysis and exports, and its undo ----------------------------------------


def _numbers(data) -> dict:
    client, p = data.client(), data.project.pk
    labels = client.get(f"/api/v1/projects/{p}/labels/?question=final_verdict&limit=100").json()["results"]
    # The analysis' input, as the dashboard and the analysis API compute it (their cache is marked
    # stale by the same services, see test_quality.py).
    analysis = analyze(judgments_frame(project_id=p, questions=["final_verdict"]), bootstrap_rounds=0)

    def export(query: str) -> list[dict]:
        content = b"".join(client.get(f"/api/v1/projects/{p}/exports/?format=jsonl&{query}").streaming_content)
        return [json.loads(line) for line in content.decode().splitlines()]

    raw = export("kind=raw")  # every judgment, each flagged with its rater's exclusion
    return {
        "labels": sorted((r["pair"], r["label"], r["n"]) for r in labels),
        "preference": sorted(json.dumps(r, sort_keys=True) for r in export("kind=preference")),
        "raw_excluded": sorted({(r["rater"], r["rater_excluded"]) for r in raw}),
        "raw_rows": len(raw),
        "raw_counted_rows": len(export("kind=raw&include_excluded=false")),
        "analysis_raters": analysis["summary"]["n_raters"],
        "analysis_judgments": analysis["questions"]["final_verdict"]["n_judgments"],
    }


def test_exclusion_changes_analysis_and_exports_and_its_undo_restores_them(data):
    fourth = data.raters[3]  # excluded by the fixture; its answers oppose the majority
    client = data.client()
    base = f"/api/v1/projects/{data.project.pk}/raters/"

    def post(action: str) -> None:
        assert client.post(f"{base}{fourth.pk}/{action}/").status_code == 200

    before = _numbers(data)
    assert (before["analysis_raters"], before["analysis_judgments"]) == (3, 18)
    assert (before["raw_rows"], before["raw_counted_rows"]) == (24, 18) and (fourth.pk, True) in before["raw_excluded"]
    post("include")
    with_all = _numbers(data)
    assert (with_all["analysis_raters"], with_all["analysis_judgments"]) == (4, 24)
    assert (with_all["raw_rows"], with_all["raw_counted_rows"]) == (24, 24)
    assert (fourth.pk, False) in with_all["raw_excluded"]
    assert with_all["labels"] != before["labels"] and with_all["preference"] != before["preference"]
    post("exclude")
    assert _numbers(data) == before
    post("include")
    assert _numbers(data) == with_all
    assert Judgment.objects.filter(rater=fourth).count() == 6  # nothing was ever deleted


# --- the crowd quota ------------------------------------------------------------------------


def test_the_quota_stops_the_rater_with_the_completion_code(monkeypatch):
    _gold_everything(monkeypatch, False)
    project = ProjectFactory(rater_quota=2, completion_code="DONE42", completion_url="https://example.org/back")
    make_pairs(project, 5)
    rater = make_rater(project)
    client = _client(rater)
    for _ in range(2):
        lease = _next(client, project).json()
        assert _submit(client, lease["assignment"]).status_code == 200
    response = _next(client, project)
    assert response.status_code == 403
    assert response.json() == {
        "detail": response.json()["detail"], "code": "quota_reached", "completion_code": "DONE42",
        "completion_url": "https://example.org/back",
    }
    # A lease taken before the quota was lowered is still accepted.
    Project.objects.filter(pk=project.pk).update(rater_quota=None)
    held = _next(client, project).json()
    Project.objects.filter(pk=project.pk).update(rater_quota=2)
    assert _submit(client, held["assignment"]).status_code == 200
    assert _next(client, project).json()["code"] == "quota_reached"


# --- gold leases are blind ------------------------------------------------------------------


def test_a_gold_lease_looks_exactly_like_any_other(monkeypatch):
    project = ProjectFactory(overlap=1)
    normal = make_pairs(project, 2)
    gold = make_pairs(project, 1)[0]
    Pair.objects.filter(pk=gold.pk).update(is_gold=True, gold_answers={"final_verdict": ["a"]}, judgment_count=9)
    rater = make_rater(project)
    client = _client(rater)
    _gold_everything(monkeypatch, True)
    gold_body = _next(client, project)
    assert Assignment.objects.get(pk=gold_body.json()["assignment"]).pair_id == gold.pk
    assert _submit(client, gold_body.json()["assignment"]).status_code == 200
    _gold_everything(monkeypatch, False)
    normal_body = _next(client, project)
    assert Assignment.objects.get(pk=normal_body.json()["assignment"]).pair_id in {p.pk for p in normal}
    for body in (gold_body, normal_body):
        assert "gold" not in body.content.decode().lower()
    assert set(gold_body.json()) == set(normal_body.json())
    assert {k: type(v) for k, v in gold_body.json().items()} == {k: type(v) for k, v in normal_body.json().items()}
    assert set(gold_body.json()["progress"]) == set(normal_body.json()["progress"])
    # The judgment response is the same shape too.
    submitted = _submit(client, normal_body.json()["assignment"]).json()
    assert set(submitted) == {"judgment", "assignment", "created"}


def test_submit_flags_and_gold_pause_through_the_api(monkeypatch):
    _gold_everything(monkeypatch, True)
    project = ProjectFactory(gold_min=2, gold_accuracy_threshold=0.9, too_fast_seconds=3)
    gold = make_pairs(project, 3)
    Pair.objects.filter(pk__in=[p.pk for p in gold]).update(is_gold=True, gold_answers={"final_verdict": ["a"]})
    rater = make_rater(project)
    client = _client(rater)
    for _ in range(2):
        lease = _next(client, project).json()
        left_is_a = Assignment.objects.get(pk=lease["assignment"]).left_is_a
        wrong = dict.fromkeys(ALL_LEFT, "right" if left_is_a else "left")  # "b" everywhere
        assert _submit(client, lease["assignment"], wrong, duration_ms=1000).status_code == 200
    assert all(j.flags == ["too_fast"] for j in Judgment.objects.filter(rater=rater))
    response = _next(client, project)
    assert (response.status_code, response.json()["code"]) == (403, "paused")
    membership = Membership.objects.get(project=project, user=rater)
    assert membership.paused_reason == "automatic: gold accuracy 0/2 = 0 % below 90 % after 2 golds"
    listed = {r["rater_id"]: r for r in _client(MembershipFactory(
        project=project, role=Membership.ROLE_MANAGER).user).get(f"/api/v1/projects/{project.pk}/raters/").json()}
    assert listed[rater.pk]["paused"] and "gold accuracy 0/2" in listed[rater.pk]["paused_reason"]
    assert listed[rater.pk]["gold_accuracy"] == 0.0


# --- roles ----------------------------------------------------------------------------------

QUALITY_ENDPOINTS = [
    ("get", "/api/v1/projects/{p}/raters/", None),
    ("post", "/api/v1/projects/{p}/raters/{r}/pause/", {"reason": "x"}),
    ("post", "/api/v1/projects/{p}/raters/{r}/resume/", None),
    ("post", "/api/v1/projects/{p}/raters/{r}/exclude/", None),
    ("post", "/api/v1/projects/{p}/raters/{r}/include/", None),
    ("patch", "/api/v1/pairs/{pair}/", {"gold_answers": {"final_verdict": "a"}}),
    ("patch", "/api/v1/projects/{p}/", {"gold_rate": 0.5}),
    ("post", "/api/v1/projects/{p}/pairs/gold/import/", "file"),
]


def _call(client, method, template, body, data):
    path = template.format(p=data.project.pk, r=data.raters[0].pk, pair=data.pairs[0].pk)
    if body == "file":
        upload = SimpleUploadedFile("g.csv", b"prompt_id,generator_a,generator_b,final_verdict\nprompt-0,alpha,beta,a")
        return getattr(client, method)(path, {"file": upload}, format="multipart")
    return getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)


@pytest.mark.parametrize(("method", "template", "body"), QUALITY_ENDPOINTS)
def test_raters_other_managers_and_anonymous_are_refused_and_nothing_changes(data, method, template, body):
    other_manager = MembershipFactory(project=ProjectFactory(name="Other"), role=Membership.ROLE_MANAGER).user
    for user, expected in ((data.raters[0], 403), (other_manager, 403), (None, 401)):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        response = _call(client, method, template, body, data)
        assert response.status_code == expected, (template, user, response.content[:200])
    membership = Membership.objects.get(project=data.project, user=data.raters[0])
    assert not membership.paused and not membership.excluded
    assert not Pair.objects.filter(is_gold=True).exists()
    assert Project.objects.get(pk=data.project.pk).gold_rate == 0.1


@pytest.mark.parametrize(("method", "template", "body"), QUALITY_ENDPOINTS)
def test_the_manager_and_an_admin_are_served(data, method, template, body):
    admin = UserFactory(is_superuser=True, is_staff=True)  # no membership at all
    for user in (data.manager, admin):
        response = _call(data.client(user), method, template, body, data)
        assert response.status_code in (200, 201), (template, user, response.content[:300])


def test_an_admin_sees_and_manages_every_project_a_manager_only_theirs(data):
    other = judged_project(name="Other study")
    admin = UserFactory(is_superuser=True, is_staff=True)
    assert sorted(p["name"] for p in data.client(admin).get("/api/v1/projects/").json()) == ["Judged", "Other study"]
    assert [p["name"] for p in data.client().get("/api/v1/projects/").json()] == ["Judged"]
    assert data.client().get(f"/api/v1/projects/{other.project.pk}/raters/").status_code == 403
    assert data.client(admin).get(f"/api/v1/projects/{other.project.pk}/raters/").status_code == 200


def test_a_rater_sees_only_rating_pages(data):
    rater = data.raters[0]
    other = ProjectFactory(name="Not theirs")
    client = APIClient()
    client.force_login(rater)
    home = client.get("/")
    assert home.status_code == 200
    html = home.content.decode()
    assert f"/projects/{data.project.pk}/rate/" in html and "Not theirs" not in html
    assert f'href="/projects/{data.project.pk}/"' not in html  # no manager page linked
    assert client.get(f"/projects/{data.project.pk}/rate/").status_code == 200
    for path in (
        f"/projects/{data.project.pk}/", f"/projects/{data.project.pk}/dashboard/",
        f"/projects/{data.project.pk}/exports/", f"/projects/{other.pk}/",
    ):
        assert client.get(path).status_code in (403, 404), path
    # Nor any manager endpoint of the API.
    api = APIClient()
    api.force_authenticate(rater)
    p = data.project.pk
    for path in ("/api/v1/projects/", f"/api/v1/projects/{p}/", f"/api/v1/projects/{p}/raters/",
                 f"/api/v1/projects/{p}/judgments/", f"/api/v1/projects/{p}/labels/"):
        assert api.get(path).status_code == 403, path


def test_the_schema_documents_the_quality_endpoints_with_examples():
    import io  # noqa: PLC0415

    import yaml  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    out = io.StringIO()
    call_command("spectacular", "--fail-on-warn", stdout=out)
    paths = yaml.safe_load(out.getvalue())["paths"]
    for path, method in (
        ("/api/v1/projects/{project_id}/raters/", "get"),
        ("/api/v1/projects/{project_id}/raters/{rater_id}/pause/", "post"),
        ("/api/v1/projects/{project_id}/raters/{rater_id}/resume/", "post"),
        ("/api/v1/projects/{project_id}/raters/{rater_id}/exclude/", "post"),
        ("/api/v1/projects/{project_id}/raters/{rater_id}/include/", "post"),
        ("/api/v1/pairs/{pair_id}/", "patch"),
        ("/api/v1/projects/{project_id}/pairs/gold/import/", "post"),
        ("/api/v1/projects/{project_id}/", "patch"),
    ):
        operation = paths[path][method]
        assert {"401", "403"} <= set(operation["responses"]), (path, method)
        assert "example" in str(operation), (path, method)
    project_fields = str(paths["/api/v1/projects/{project_id}/"]["patch"])
    for field in ("gold_rate", "gold_min", "gold_accuracy_threshold", "too_fast_seconds", "rater_quota",
                  "completion_code", "completion_url"):
        assert field in project_fields
    assert "quota_reached" in str(paths["/api/v1/projects/{project_id}/assignments/next/"]["post"])


@contextmanager
def _statements(expected: int):
    """Exactly ``expected`` SQL statements, not counting the savepoints that only this test's
    surrounding transaction causes (in production the loop runs in autocommit)."""
    with CaptureQueriesContext(connection) as captured:
        yield
    sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sql) == expected, "\n".join(s[:120] for s in sql)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement forms are PostgreSQL's")
def test_gold_costs_no_statement_on_the_lease_and_one_on_its_submission(monkeypatch):
    project = ProjectFactory(gold_min=50)
    gold = make_pairs(project, 3)
    Pair.objects.filter(pk__in=[p.pk for p in gold]).update(is_gold=True, gold_answers={"final_verdict": ["a"]})
    make_pairs(project, 3)
    warm, rater = make_rater(project), make_rater(project)
    _next(_client(warm), project)  # prepares the statements, fills the open-pair count cache
    client = _client(rater)
    _gold_everything(monkeypatch, True)
    with _statements(3):  # token+user, project+membership+rubric, the lease
        lease = _next(client, project).json()
    assert Assignment.objects.get(pk=lease["assignment"]).pair.is_gold
    # token+user, assignment+pair facts+project+rubric, the write, the rater's gold record
    # (on_commit callbacks, e.g. the dashboard's, do not run inside this test's transaction)
    with _statements(4):
        assert _submit(client, lease["assignment"]).status_code == 200
    _gold_everything(monkeypatch, False)
    with _statements(3):
        lease = _next(client, project).json()
    with _statements(3):  # a normal pair: no gold record read
        assert _submit(client, lease["assignment"]).status_code == 200
