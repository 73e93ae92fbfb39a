"""The rater API: shapes, every error, both auth schemes, blindness, SQL statements per call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Judgment, Membership, Pair, Question
from tests.factories import (
    ALL_LEFT,
    GeneratorFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_pair,
    make_pairs,
    make_rater,
)

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _next(client, project):
    return client.post(f"/api/v1/projects/{project.pk}/assignments/next/", format="json")


def _submit(client, assignment_id, answers=ALL_LEFT, **extra):
    body = {"answers": answers, "duration_ms": 5000, "watch_left_seconds": 4.0, "watch_right_seconds": 4.0, **extra}
    return client.post(f"/api/v1/assignments/{assignment_id}/judgment/", body, format="json")


@pytest.fixture
def setup():
    project = ProjectFactory(name="Secret campaign", instructions="Be careful.")
    gen_a = GeneratorFactory(project=project, name="SecretGenAlpha")
    gen_b = GeneratorFactory(project=project, name="SecretGenBeta")
    pairs = [make_pair(project=project, gen_a=gen_a, gen_b=gen_b) for _ in range(2)]
    rater = make_rater(project)
    return project, pairs, rater


def test_next_returns_the_pair_to_show_and_nothing_blind_breaking(setup):
    project, pairs, rater = setup
    client = _client(rater)
    response = _next(client, project)
    assert response.status_code == 200
    data = response.json()
    assignment = Assignment.objects.get(pk=data["assignment"])
    pair = assignment.pair
    left, right = (pair.video_a, pair.video_b) if assignment.left_is_a else (pair.video_b, pair.video_a)
    assert data["prompt"] == pair.prompt.text
    assert data["left"] == {"video": f"/media/v/{left.public_id}.mp4", "poster": None, "fps": 24.0, "duration": 1.0}
    assert data["right"]["video"] == f"/media/v/{right.public_id}.mp4"
    assert [q["key"] for q in data["questions"]] == list(ALL_LEFT)
    assert data["questions"][0] == {
        "key": "visual_appeal",
        "text": "Which video is more pleasing to watch?",
        "help_text": "Overall look: image quality, aesthetics, absence of artefacts.",
        "choices": ["left", "tie", "right"],
        "required": True,
    }
    assert data["progress"] == {"judged": 0, "available": 2}
    assert data["require_full_watch"] is True and data["resumed"] is False
    assert data["judgment_url"] == f"/api/v1/assignments/{assignment.pk}/judgment/"
    assert data["skip_url"] == f"/api/v1/assignments/{assignment.pk}/skip/"
    other = pairs[1] if pair == pairs[0] else pairs[0]
    assert set(data["prefetch"]["videos"]) == {
        f"/media/v/{other.video_a.public_id}.mp4",
        f"/media/v/{other.video_b.public_id}.mp4",
    }
    body = response.content.decode()
    for secret in ("SecretGen", "/nowhere/", "video_a", "generator", "left_is_a", "pair"):
        assert secret not in body
    # A reload gives the same lease back.
    again = _next(client, project).json()
    assert again["assignment"] == data["assignment"] and again["resumed"] is True
    assert again["left"] == data["left"]


def test_choices_follow_the_sides_of_an_asymmetric_question():
    project = ProjectFactory(rubric=[{"key": "a_only", "text": "Is A fine?", "allowed": ["a", "tie"]}])
    make_pair(project=project)
    rater = make_rater(project)
    data = _next(_client(rater), project).json()
    left_is_a = Assignment.objects.get(pk=data["assignment"]).left_is_a
    assert data["questions"][0]["choices"] == (["left", "tie"] if left_is_a else ["tie", "right"])


def test_next_answers_204_when_nothing_is_left_and_refuses_non_raters(setup):
    project, pairs, rater = setup
    project.overlap = 1
    project.save()
    for pair in pairs:
        Pair.objects.filter(pk=pair.pk).update(judgment_count=1)
    assert _next(_client(rater), project).status_code == 204
    outsider = UserFactory()
    response = _next(_client(outsider), project)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    response = _next(_client(manager), project)
    assert (response.status_code, response.json()["code"]) == (403, "not_rater")
    paused = make_rater(project, paused=True, paused_reason="too fast")
    response = _next(_client(paused), project)
    assert (response.status_code, response.json()["code"]) == (403, "paused")
    # Calm, and the reason is the managers' business: never shown to the rater.
    assert "too fast" not in response.json()["detail"] and "paused" not in response.json()["detail"]
    assert APIClient().post(f"/api/v1/projects/{project.pk}/assignments/next/").status_code == 401


def test_submit_stores_once_and_repeats_answer_200(setup):
    project, _pairs_, rater = setup
    client = _client(rater)
    lease = _next(client, project).json()
    first = _submit(client, lease["assignment"])
    assert first.status_code == 200 and first.json()["created"] is True
    again = _submit(client, lease["assignment"])
    assert again.status_code == 200
    assert again.json() == {"judgment": first.json()["judgment"], "assignment": lease["assignment"], "created": False}
    assert Judgment.objects.count() == 1
    conflict = _submit(client, lease["assignment"], answers=dict(ALL_LEFT, final_verdict="right"))
    assert conflict.status_code == 409 and conflict.json()["code"] == "answers_differ"


@pytest.mark.parametrize(
    ("answers", "key", "fragment"),
    [
        ({k: v for k, v in ALL_LEFT.items() if k != "text_match"}, "text_match", "required"),
        (dict(ALL_LEFT, colour="left"), "colour", "unknown question"),
        (dict(ALL_LEFT, consistency="up"), "consistency", "not one of left, right, tie"),
        (dict(ALL_LEFT, consistency="a"), "consistency", "not one of left, right, tie"),
    ],
)
def test_submit_names_the_bad_key(setup, answers, key, fragment):
    project, _pairs_, rater = setup
    client = _client(rater)
    lease = _next(client, project).json()
    response = _submit(client, lease["assignment"], answers=answers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_answers" and list(body["answers"]) == [key]
    assert fragment in body["answers"][key] and key in body["detail"]
    assert not Judgment.objects.exists()


def test_submit_refuses_a_value_the_question_does_not_allow():
    project = ProjectFactory(rubric=[{"key": "verdict", "text": "Better?", "allowed": ["a", "b"]}])
    make_pair(project=project)
    rater = make_rater(project)
    client = _client(rater)
    lease = _next(client, project).json()
    response = _submit(client, lease["assignment"], answers={"verdict": "tie"})
    assert response.status_code == 400 and "not allowed" in response.json()["answers"]["verdict"]


@pytest.mark.parametrize(
    "body",
    [
        {"answers": "left"},
        {"answers": ALL_LEFT, "duration_ms": -1},
        {"answers": ALL_LEFT, "watch_left_seconds": "long"},
        {},
    ],
)
def test_submit_malformed_body_is_400(setup, body):
    project, _pairs_, rater = setup
    client = _client(rater)
    lease = _next(client, project).json()
    response = client.post(f"/api/v1/assignments/{lease['assignment']}/judgment/", body, format="json")
    assert response.status_code == 400


def test_another_raters_assignment_is_404_for_every_action(setup):
    project, _pairs_, rater = setup
    lease = _next(_client(rater), project).json()
    intruder = _client(make_rater(project))
    assert _submit(intruder, lease["assignment"]).status_code == 404
    response = intruder.post(f"/api/v1/assignments/{lease['assignment']}/skip/", {"reason": "cannot_judge"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert _submit(intruder, 999_999_999).status_code == 404
    assert Assignment.objects.get(pk=lease["assignment"]).status == "active"


def test_expired_lease_410_once_the_pair_is_full(setup):
    project, pairs, rater = setup
    project.overlap = 1
    project.lease_seconds = 60
    project.save()
    Pair.objects.filter(pk=pairs[1].pk).update(judgment_count=1)  # only one open pair
    client = _client(rater)
    lease = _next(client, project).json()
    Assignment.objects.filter(pk=lease["assignment"]).update(
        leased_at=timezone.now() - timedelta(seconds=120), expires_at=timezone.now() - timedelta(seconds=60)
    )
    other = _client(make_rater(project))
    assert _next(other, project).status_code == 200  # reclaims the expired lease, takes the pair
    response = _submit(client, lease["assignment"])
    assert response.status_code == 410
    assert response.json()["code"] == "lease_expired" and "expired" in response.json()["detail"]


def test_skip_with_reason_then_judging_it_is_409(setup):
    project, _pairs_, rater = setup
    client = _client(rater)
    lease = _next(client, project).json()
    url = f"/api/v1/assignments/{lease['assignment']}/skip/"
    assert client.post(url, {"reason": "boring"}, format="json").status_code == 400
    response = client.post(url, {"reason": "video_broken", "note": "no picture"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"assignment": lease["assignment"], "status": "skipped", "reason": "video_broken"}
    assert client.post(url, {"reason": "video_broken"}, format="json").status_code == 200  # harmless again
    conflict = _submit(client, lease["assignment"])
    assert conflict.status_code == 409 and conflict.json()["code"] == "assignment_closed"
    judged = _next(client, project).json()
    _submit(client, judged["assignment"])
    response = client.post(f"/api/v1/assignments/{judged['assignment']}/skip/", {"reason": "cannot_judge"})
    assert response.status_code == 409


def test_session_auth_needs_the_csrf_token(setup):
    project, _pairs_, rater = setup
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(rater)
    url = f"/api/v1/projects/{project.pk}/assignments/next/"
    assert client.post(url).status_code == 403  # no CSRF token
    page = client.get(f"/projects/{project.pk}/rate/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    response = client.post(url, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    lease = response.json()
    response = client.post(lease["judgment_url"], {"answers": ALL_LEFT}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_token_from_the_auth_endpoint_works(setup):
    project, _pairs_, rater = setup
    token = APIClient().post("/api/v1/auth/token/", {"username": rater.username, "password": "pw"}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert _next(client, project).status_code == 200


def test_the_schema_documents_the_rater_endpoints():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    schema = client.get("/api/schema/", {"format": "json"}).json()
    next_op = schema["paths"]["/api/v1/projects/{project_id}/assignments/next/"]["post"]
    assert {"200", "204", "403", "404"} <= set(next_op["responses"])
    judgment_op = schema["paths"]["/api/v1/assignments/{assignment_id}/judgment/"]["post"]
    assert {"200", "400", "404", "409", "410"} <= set(judgment_op["responses"])
    assert "/api/v1/assignments/{assignment_id}/skip/" in schema["paths"]
    assert "/api/v1/projects/{project_id}/raters/" in schema["paths"]


# --- SQL statements per call (token auth included) -----------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement forms are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_sql_statements_per_call(django_assert_max_num_queries):
    project = ProjectFactory()
    make_pairs(project, 5)
    warm, rater = make_rater(project), make_rater(project)
    warm_client, client = _client(warm), _client(rater)
    _next(warm_client, project)  # fills the open-pair count cache, as in steady state
    Token.objects.get_or_create(user=rater)
    with django_assert_max_num_queries(3):  # token+user, project+membership+rubric, the lease
        lease = _next(client, project).json()
    with django_assert_max_num_queries(3):  # token+user, assignment+project+rubric, the write
        assert _submit(client, lease["assignment"]).status_code == 200
    next_lease = _next(client, project).json()
    with django_assert_max_num_queries(3):  # a reload of a held lease costs the same
        assert _next(client, project).json()["assignment"] == next_lease["assignment"]
    cache.clear()


# --- raters ---------------------------------------------------------------------------------


def test_manager_adds_raters_who_can_then_log_in_and_judge(setup):
    project, _pairs_, _rater_ = setup
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    UserFactory(username="known")
    client = _client(manager)
    response = client.post(f"/api/v1/projects/{project.pk}/raters/", {"usernames": ["newbie", "known"]}, format="json")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["created"] == 1
    newbie, known = data["raters"]
    assert (newbie["status"], known["status"], known["password"]) == ("created", "added", None)
    token = APIClient().post("/api/v1/auth/token/", {"username": "newbie", "password": newbie["password"]})
    assert token.status_code == 200
    rater_client = APIClient()
    rater_client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert _next(rater_client, project).status_code == 200
    listing = client.get(f"/api/v1/projects/{project.pk}/raters/").json()
    assert {"newbie", "known"} <= {r["username"] for r in listing}
    # Raters cannot add raters nor list them.
    assert (
        rater_client.post(f"/api/v1/projects/{project.pk}/raters/", {"usernames": ["x"]}, format="json").status_code
        == 403
    )
    assert rater_client.get(f"/api/v1/projects/{project.pk}/raters/").status_code == 403


def test_rater_sees_only_projects_they_belong_to(setup):
    project, _pairs_, rater = setup
    other = ProjectFactory()
    make_pair(project=other)
    client = APIClient()
    client.force_login(rater)
    assert client.get(f"/projects/{project.pk}/rate/").status_code == 200
    assert client.get(f"/projects/{other.pk}/rate/").status_code == 404
    assert _next(_client(rater), other).status_code == 404
    home = client.get("/").content.decode()
    assert f"/projects/{project.pk}/rate/" in home and f"/projects/{other.pk}/rate/" not in home


def test_rate_page_is_blind_and_escapes_instructions(setup):
    project, _pairs_, rater = setup
    project.instructions = "<script>alert('x')</script> Watch both."
    project.save()
    client = APIClient()
    client.force_login(rater)
    html = client.get(f"/projects/{project.pk}/rate/").content.decode()
    assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html
    assert "SecretGen" not in html
    assert 'aria-label="Position in both videos"' in html


def test_questions_order_follows_the_rubric_order(setup):
    project, _pairs_, rater = setup
    Question.objects.filter(project=project, key="visual_appeal").update(order=99)
    data = _next(_client(rater), project).json()
    assert data["questions"][-1]["key"] == "visual_appeal"


def test_project_page_shows_raters_and_recent_skips_to_the_manager(setup):
    project, _pairs_, rater = setup
    client = _client(rater)
    lease = _next(client, project).json()
    client.post(lease["skip_url"], {"reason": "inappropriate", "note": "<b>gore</b>"}, format="json")
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    page = APIClient()
    page.force_login(manager)
    html = page.get(f"/projects/{project.pk}/").content.decode()
    assert 'id="raters"' in html and rater.username in html
    assert "Inappropriate content" in html and "&lt;b&gt;gore&lt;/b&gt;" in html
    assert "manage_raters.js" in html
    rater_page = APIClient()
    rater_page.force_login(rater)
    assert rater_page.get(f"/projects/{project.pk}/").status_code == 404  # managers only


def test_responses_have_exactly_the_documented_shape(setup):
    from annotation.api.rater import JudgmentOutputSerializer, NextOutputSerializer

    project, _pairs_, rater = setup
    client = _client(rater)
    data = _next(client, project).json()
    assert NextOutputSerializer(data).data == data
    assert set(data) == set(NextOutputSerializer().fields)
    result = _submit(client, data["assignment"]).json()
    assert JudgmentOutputSerializer(result).data == result and set(result) == set(JudgmentOutputSerializer().fields)


def test_token_authentication_refuses_unknown_tokens_and_inactive_users(setup):
    project, _pairs_, rater = setup
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = _next(client, project)
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    good = _client(rater)
    rater.is_active = False
    rater.save()
    response = _next(good, project)
    assert response.status_code == 401 and "inactive" in response.json()["detail"]
