"""CSRF: every page and session-authenticated API POST is refused without a token.

A walker POSTs to every URL pattern of the site as a logged-in user with no CSRF token and
expects 403 from Django's or DRF's CSRF check; the only exceptions are listed (with why).
Then the main forms are checked one by one: refused without the token, accepted with it
(so the 403 is the CSRF check, not something else), and nothing was stored by the refusal.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import Assignment, ImportJob, Membership, Pair
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db

#: Views that take no session and so cannot be forged cross-site, by route.
CSRF_EXEMPT = {
    "api/v1/auth/token/": "credentials in the body, no cookie: a forged request gains nothing",
}
#: Routes whose renderer shows a refusal without its detail (the Swagger page: "403 Forbidden").
OPAQUE_REFUSALS = {"api/docs/"}
_CONVERTER_VALUES = {"id": "1", "int": "1", "uuid": str(uuid.uuid4()), "str": "x", "slug": "x", "path": "x"}


def _routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every path() route of the site, fully prefixed (regex routes, i.e. the admin's, left out)."""
    out: list[str] = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = getattr(entry.pattern, "_route", None)
        if route is None:
            continue
        if isinstance(entry, URLResolver):
            if route.startswith("admin/"):
                continue
            out += _routes(entry, prefix + route)
        elif isinstance(entry, URLPattern):
            out.append(prefix + route)
    return out


def _url(route: str) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: _CONVERTER_VALUES[m.group(1) or "str"], route)


def _has_csrf_refusal(route: str, response) -> bool:
    body = response.content.decode(errors="replace")
    return response.status_code == 403 and ("CSRF" in body or route in OPAQUE_REFUSALS)


@pytest.fixture
def session() -> Client:
    user = UserFactory()
    MembershipFactory(user=user, role=Membership.ROLE_MANAGER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_every_route_refuses_a_post_without_token(session):
    routes = _routes()
    assert len(routes) > 30  # the walker found the site
    unexpected = []
    for route in routes:
        if route in CSRF_EXEMPT:
            continue
        response = session.post(_url(route), {"anything": "1"})
        if not _has_csrf_refusal(route, response):
            unexpected.append(f"{route}: {response.status_code}")
    assert unexpected == []
    assert session.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403


def _token(client: Client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_login_form_needs_the_token():
    UserFactory(username="csrf-user")
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/login/", {"username": "csrf-user", "password": "pw"})
    assert refused.status_code == 403 and "_auth_user_id" not in client.session
    token = _token(client, "/login/")
    accepted = client.post("/login/", {"username": "csrf-user", "password": "pw", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302 and "_auth_user_id" in client.session


def test_generate_pairs_form_needs_the_token():
    manager = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    first = VideoFactory(project=project, prompt__project=project)
    VideoFactory(project=project, prompt=first.prompt)
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    url = f"/projects/{project.pk}/pairs/generate/"
    assert client.post(url).status_code == 403
    assert Pair.objects.filter(project=project).count() == 0
    token = _token(client, f"/projects/{project.pk}/")
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert Pair.objects.filter(project=project).count() == 1


def test_upload_and_raters_over_the_session_need_the_token():
    """The project page's upload and raters form call the API with the session cookie."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    manager = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    manifest = b"prompt_id,prompt,generator,video\n"
    refused = client.post(f"/api/v1/projects/{project.pk}/imports/", {"file": SimpleUploadedFile("m.csv", manifest)})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert ImportJob.objects.count() == 0
    raters = client.post(f"/api/v1/projects/{project.pk}/raters/", {"usernames": ["newcomer"]})
    assert raters.status_code == 403 and Membership.objects.filter(project=project).count() == 1
    token = _token(client, f"/projects/{project.pk}/")
    accepted = client.post(
        f"/api/v1/projects/{project.pk}/imports/", {"file": SimpleUploadedFile("m.csv", manifest)},
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code != 403 and ImportJob.objects.count() == 1


def test_rater_calls_over_the_session_need_the_token():
    """The rating page's next / submit / skip go to the API with the session and its token."""
    rater = UserFactory()
    project = ProjectFactory(overlap=1)
    MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER)
    first = VideoFactory(project=project, prompt__project=project)
    VideoFactory(project=project, prompt=first.prompt)
    from annotation.services.pairs import pairs_generate

    pairs_generate(project=project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(rater)
    next_url = f"/api/v1/projects/{project.pk}/assignments/next/"
    refused = client.post(next_url, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert Assignment.objects.count() == 0
    html = client.get(f"/projects/{project.pk}/rate/").content.decode()
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    lease = client.post(next_url, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert lease.status_code == 200
    body = lease.json()
    answers = {q["key"]: "tie" for q in body["questions"]}
    submit = client.post(body["judgment_url"], {"answers": answers}, content_type="application/json")
    assert submit.status_code == 403
    skip = client.post(body["skip_url"], {"reason": Assignment.SKIP_REASONS[0][0]}, content_type="application/json")
    assert skip.status_code == 403
    assert Assignment.objects.get().status == Assignment.STATUS_ACTIVE  # neither judged nor skipped
    done = client.post(body["judgment_url"], {"answers": answers}, content_type="application/json",
                       HTTP_X_CSRFTOKEN=token)
    assert done.status_code == 200
