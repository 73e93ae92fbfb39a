"""The invite page (Django client): join flow, refusals, sessions, the rating page and the completion code."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from annotation.models import Membership
from annotation.services.crowd import project_crowd_settings_update, project_invite_disable, project_invite_rotate
from tests.factories import PROLIFIC_PID as PID
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, judge_next, make_crowd_project, make_pairs

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_crowd_project()


def _join_url(project, token=None, **params):
    url = reverse("frontend:join", args=[token or project.invite_token])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def _session_user(client):
    return client.session.get(SESSION_KEY)


def test_join_with_prolific_ids_logs_in_and_opens_the_rating_page(client, project):
    response = client.get(_join_url(project, PROLIFIC_PID=PID, STUDY_ID="S1", SESSION_ID="X1"))
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:rate", args=[project.pk])
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    membership = Membership.objects.get(project=project, external_id=PID)
    assert int(_session_user(client)) == membership.user_id
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="rater"' in html
    # No way from here to other pages: no "back to your projects", no manager pages.
    assert 'id="done-home"' not in html
    for manager_path in (f"/projects/{project.pk}/", "/dashboard/", "/raters/", "/exports/", "/gold/"):
        assert f'href="{manager_path}' not in html and f'{manager_path}"' not in html
    # Coming back with the same id: the same account.
    client.logout()
    client.get(_join_url(project, PROLIFIC_PID=PID))
    assert int(_session_user(client)) == membership.user_id
    assert Membership.objects.filter(project=project).count() == 1


def test_generic_worker_id_parameter(client, project):
    response = client.get(_join_url(project, worker_id="A1B2C3D4E5"))
    assert response.status_code == 302
    assert Membership.objects.filter(project=project, external_id="A1B2C3D4E5").exists()


def test_without_a_worker_id_the_page_explains_and_asks_for_no_password(client, project):
    response = client.get(_join_url(project))
    assert response.status_code == 200
    html = response.content.decode()
    assert "needs your worker id" in html
    assert 'type="password"' not in html and "password" not in html.lower().replace("no password is needed", "")
    assert 'name="worker_id"' in html and 'method="get"' in html
    assert _session_user(client) is None
    assert not Membership.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "missing"),
        ("%7B%7B%25PROLIFIC_PID%25%7D%7D", "placeholder"),  # {{%PROLIFIC_PID%}}, the link opened as written
        ("bad%20id", "not allowed"),
    ],
)
def test_a_bad_worker_id_is_a_clear_400_and_stores_nothing(client, project, value, says):
    response = client.get(_join_url(project, PROLIFIC_PID=value))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and says in html and "worker id" in html
    assert 'name="PROLIFIC_PID"' in html  # the form keeps the parameter's name
    assert _session_user(client) is None
    assert not Membership.objects.filter(project=project).exists()


def test_wrong_rotated_or_disabled_links_are_a_404_saying_so(client, project):
    old = project.invite_token
    for token in ("nonsense", f"{project.pk}-wrong", old + "x"):
        response = client.get(_join_url(project, token=token, PROLIFIC_PID=PID))
        assert response.status_code == 404
        assert "This link is not valid" in response.content.decode()
    project_invite_rotate(project=project)
    response = client.get(_join_url(project, token=old, PROLIFIC_PID=PID))
    assert response.status_code == 404 and "not valid" in response.content.decode()
    project.refresh_from_db()
    current = project.invite_token
    project_invite_disable(project=project)
    response = client.get(_join_url(project, token=current, PROLIFIC_PID=PID))
    assert response.status_code == 404
    assert not Membership.objects.filter(external_id=PID).exists()
    assert _session_user(client) is None


def test_join_only_accepts_get(client, project):
    assert client.post(_join_url(project, PROLIFIC_PID=PID)).status_code == 405


def test_a_logged_in_manager_is_logged_out_and_the_worker_logged_in(client, project):
    manager = UserFactory(username="boss")
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    client.force_login(manager)
    session = client.session
    session["manager_scratch"] = "keep-out"
    session.save()
    old_key = client.session.session_key
    response = client.get(_join_url(project, PROLIFIC_PID=PID))
    assert response.status_code == 302
    worker_id = Membership.objects.get(project=project, external_id=PID).user_id
    assert int(_session_user(client)) == worker_id != manager.pk
    assert client.session.session_key != old_key
    assert "manager_scratch" not in client.session
    # The worker's session reaches no manager page.
    assert client.get(reverse("frontend:project", args=[project.pk])).status_code == 404


def test_a_worker_cannot_reach_another_project(client, project):
    other = ProjectFactory(name="Other study")
    project_invite_rotate(project=other)
    make_pairs(other, 1)
    client.get(_join_url(project, PROLIFIC_PID=PID))
    assert client.get(reverse("frontend:rate", args=[other.pk])).status_code == 404
    api = client.post(f"/api/v1/projects/{other.pk}/assignments/next/", content_type="application/json")
    assert api.status_code == 404
    # The other project's link with this project's token is refused (the token names its project).
    response = client.get(_join_url(project, token=f"{other.pk}-" + project.invite_token.split("-", 1)[1]))
    assert response.status_code == 404


def test_completion_code_is_not_in_the_page_and_served_only_once_earned(client, project):
    make_pairs(project, 3)
    project_crowd_settings_update(
        project=project, rater_quota=1, completion_code="SECRET-CODE-77", completion_url="https://example.org/done"
    )
    project.refresh_from_db()
    client.get(_join_url(project, PROLIFIC_PID=PID))
    page = client.get(reverse("frontend:rate", args=[project.pk]))
    assert "SECRET-CODE-77" not in page.content.decode()
    completion = reverse("frontend:rate-completion", args=[project.pk])
    early = client.get(completion)
    assert early.status_code == 404 and early.json()["code"] == "not_earned"
    assert "SECRET-CODE-77" not in early.content.decode()
    worker = Membership.objects.get(project=project, external_id=PID).user
    judge_next(project, worker)
    done = client.get(completion)
    assert done.status_code == 200
    assert done.json() == {
        "reason": "quota_reached",
        "judged": 1,
        "completion_code": "SECRET-CODE-77",
        "completion_url": "https://example.org/done",
    }
    client.logout()
    assert client.get(completion).status_code == 403


def test_a_named_rater_keeps_the_link_back_home(client, project):
    rater = UserFactory(username="named-rater")
    MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER)
    client.force_login(rater)
    html = client.get(reverse("frontend:rate", args=[project.pk])).content.decode()
    assert 'id="done-home"' in html
