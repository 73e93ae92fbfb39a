"""The raters page and the gold pairs page (Django client): permissions, the report as shown,
pause/resume/exclude/include, the invite link and crowd settings, gold marking."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Assignment, Judgment, Membership, Pair, Project
from annotation.services.assignments import assignment_next
from annotation.services.crowd import InviteInvalid, crowd_rater_enter, project_for_invite, project_invite_rotate
from annotation.services.judgments import judgment_submit
from tests.factories import (
    ALL_LEFT,
    GeneratorFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    UserFactory,
    make_pair,
    make_pairs,
)

pytestmark = pytest.mark.django_db


def _judge_all(project, rater, *, duration_ms: int) -> int:
    n = 0
    while (lease := assignment_next(project=project, rater=rater, gold=False)) is not None:
        assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
        judgment_submit(assignment=assignment, answers=ALL_LEFT, duration_ms=duration_ms)
        n += 1
    return n


@pytest.fixture
def setup():
    project = ProjectFactory(name="QC study", overlap=3)
    manager = MembershipFactory(project=project, role="manager", user=UserFactory(username="boss")).user
    careful = MembershipFactory(project=project, role="rater", user=UserFactory(username="careful")).user
    make_pairs(project, 12)
    project_invite_rotate(project=project)
    project.refresh_from_db()
    hasty = crowd_rater_enter(project=project, token=project.invite_token, external_id="PID0001")
    assert _judge_all(project, careful, duration_ms=20_000) == 12
    assert _judge_all(project, hasty, duration_ms=500) == 12  # every judgment too fast
    return project, manager, careful, hasty


def _raters_url(project) -> str:
    return reverse("frontend:project-raters", args=[project.pk])


def _row(html: str, rater_id: int) -> str:
    match = re.search(rf'<tr id="rater-{rater_id}".*?</tr>', html, re.S)
    assert match, f"no row for rater {rater_id}"
    return match.group(0)


# --- permissions ----------------------------------------------------------------------------


def test_raters_and_gold_pages_permissions(client, setup):
    project, manager, careful, _ = setup
    pages = [
        ("get", _raters_url(project)),
        ("get", reverse("frontend:project-gold", args=[project.pk])),
        ("post", reverse("frontend:project-rater-pause", args=[project.pk, careful.pk])),
        ("post", reverse("frontend:project-rater-exclude", args=[project.pk, careful.pk])),
        ("post", reverse("frontend:project-crowd-settings", args=[project.pk])),
        ("post", reverse("frontend:project-invite-rotate", args=[project.pk])),
        (
            "post",
            reverse("frontend:project-gold-set", args=[project.pk, Pair.objects.filter(project=project).first().pk]),
        ),
    ]
    # Anonymous: to the login page.
    for method, url in pages:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and reverse("frontend:login") in response["Location"], url
    # A rater of the project: 403.
    client.force_login(careful)
    for method, url in pages:
        assert getattr(client, method)(url).status_code == 403, url
    # A manager of another project: 404, as if the project did not exist.
    other = ProjectFactory()
    stranger = MembershipFactory(project=other, role="manager").user
    client.force_login(stranger)
    for method, url in pages:
        assert getattr(client, method)(url).status_code == 404, url
    # Nothing changed through all that.
    membership = Membership.objects.get(project=project, user=careful)
    assert not membership.paused and not membership.excluded
    client.force_login(manager)
    assert client.get(_raters_url(project)).status_code == 200
    assert client.get(reverse("frontend:project-raters", args=[other.pk])).status_code == 404


def test_forms_need_csrf(setup):
    project, manager, careful, _ = setup
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    response = client.post(reverse("frontend:project-rater-pause", args=[project.pk, careful.pk]))
    assert response.status_code == 403
    assert not Membership.objects.get(project=project, user=careful).paused


def test_project_page_links_to_the_quality_pages(client, setup):
    project, manager, _, _ = setup
    client.force_login(manager)
    html = client.get(reverse("frontend:project", args=[project.pk])).content.decode()
    assert f'href="{_raters_url(project)}"' in html
    assert f'href="{reverse("frontend:project-gold", args=[project.pk])}"' in html


# --- the report -----------------------------------------------------------------------------


def test_the_report_is_shown_with_readable_flags(client, setup):
    project, manager, careful, hasty = setup
    client.force_login(manager)
    html = client.get(_raters_url(project)).content.decode()
    hasty_row, careful_row = _row(html, hasty.pk), _row(html, careful.pk)
    assert hasty.username in hasty_row and "PID0001" in hasty_row  # the worker id is shown
    assert re.search(r'<td class="num">12(<div|</td>)', hasty_row)
    assert "Too fast" in hasty_row and 'class="badge flag flag-too_fast"' in hasty_row
    assert "Too fast" not in careful_row
    assert "20.0 s" in careful_row and "0.5 s" in hasty_row  # median time
    assert "no golds" in careful_row
    # Every question answered "left": P(left) 100 % with its p-value.
    assert "100 %" in careful_row and "(0.000)" in careful_row
    assert "12 flagged" in hasty_row
    assert "active" in careful_row
    # Pause and exclude buttons for each active rater.
    for row, rater in ((hasty_row, hasty), (careful_row, careful)):
        assert reverse("frontend:project-rater-pause", args=[project.pk, rater.pk]) in row
        assert reverse("frontend:project-rater-exclude", args=[project.pk, rater.pk]) in row


def test_pause_with_reason_then_resume(client, setup):
    project, manager, careful, hasty = setup
    client.force_login(manager)
    response = client.post(
        reverse("frontend:project-rater-pause", args=[project.pk, hasty.pk]), {"reason": "too fast, checking"}
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#rater-{hasty.pk}")
    membership = Membership.objects.get(project=project, user=hasty)
    assert membership.paused and membership.paused_reason == "too fast, checking" and membership.paused_at
    page = client.get(_raters_url(project)).content.decode()
    row = _row(page, hasty.pk)
    assert 'class="badge paused"' in row and "too fast, checking" in row
    assert reverse("frontend:project-rater-resume", args=[project.pk, hasty.pk]) in row
    assert "paused" in page and "1 paused" in page
    client.post(reverse("frontend:project-rater-resume", args=[project.pk, hasty.pk]))
    membership.refresh_from_db()
    assert not membership.paused and membership.resumed_at
    assert Judgment.objects.filter(rater=hasty).count() == 12  # nothing deleted


def test_pause_reason_too_long_changes_nothing(client, setup):
    project, manager, careful, _ = setup
    client.force_login(manager)
    response = client.post(
        reverse("frontend:project-rater-pause", args=[project.pk, careful.pk]), {"reason": "x" * 301}, follow=True
    )
    assert "at most 300" in response.content.decode()
    assert not Membership.objects.get(project=project, user=careful).paused


def test_exclude_and_include_are_reversible_and_visible(client, setup):
    project, manager, careful, hasty = setup
    client.force_login(manager)
    response = client.post(reverse("frontend:project-rater-exclude", args=[project.pk, hasty.pk]), follow=True)
    html = response.content.decode()
    assert "left out of analysis and exports (nothing is deleted)" in html
    assert Membership.objects.get(project=project, user=hasty).excluded
    row = _row(html, hasty.pk)
    assert "is-excluded" in row and 'class="badge excluded"' in row
    assert reverse("frontend:project-rater-include", args=[project.pk, hasty.pk]) in row
    assert "1 excluded" in html
    # The project page shows it too.
    project_html = client.get(reverse("frontend:project", args=[project.pk])).content.decode()
    assert 'class="badge excluded"' in project_html
    assert Judgment.objects.filter(rater=hasty).count() == 12
    client.post(reverse("frontend:project-rater-include", args=[project.pk, hasty.pk]))
    assert not Membership.objects.get(project=project, user=hasty).excluded
    assert "is-excluded" not in client.get(_raters_url(project)).content.decode()


def test_actions_on_someone_who_is_not_a_rater_here(client, setup):
    project, manager, _, _ = setup
    outsider = MembershipFactory(project=ProjectFactory(), role="rater").user
    client.force_login(manager)
    for action in ("pause", "resume", "exclude", "include"):
        response = client.post(reverse(f"frontend:project-rater-{action}", args=[project.pk, outsider.pk]), follow=True)
        assert f"Rater #{outsider.pk} is not a rater of this project" in response.content.decode()
    # The manager is not a rater either.
    client.post(reverse("frontend:project-rater-pause", args=[project.pk, manager.pk]))
    assert not Membership.objects.get(project=project, user=manager).paused
    assert not Membership.objects.filter(user=outsider, paused=True).exists()


def test_get_on_an_action_is_refused(client, setup):
    project, manager, careful, _ = setup
    client.force_login(manager)
    assert client.get(reverse("frontend:project-rater-pause", args=[project.pk, careful.pk])).status_code == 405


# --- invite link and crowd settings ---------------------------------------------------------


def test_invite_link_shown_rotated_and_disabled(client, setup):
    project, manager, _, _ = setup
    client.force_login(manager)
    old = project.invite_token
    html = client.get(_raters_url(project)).content.decode()
    assert f"http://testserver/join/{old}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&amp;STUDY_ID={{{{%STUDY_ID%}}}}" in html
    client.post(reverse("frontend:project-invite-rotate", args=[project.pk]))
    project.refresh_from_db()
    assert project.invite_token != old
    with pytest.raises(InviteInvalid):
        project_for_invite(token=old)
    html = client.get(_raters_url(project)).content.decode()
    assert project.invite_token in html and old not in html
    response = client.post(reverse("frontend:project-invite-disable", args=[project.pk]), follow=True)
    assert "Invite link disabled" in response.content.decode()
    assert Project.objects.get(pk=project.pk).invite_token is None
    assert 'id="invite-none"' in response.content.decode()


def test_crowd_settings_saved_or_refused_with_the_field(client, setup):
    project, manager, _, _ = setup
    client.force_login(manager)
    url = reverse("frontend:project-crowd-settings", args=[project.pk])
    good = {"rater_quota": "25", "completion_code": "CODE9", "completion_url": "https://app.prolific.com/x?cc=CODE9"}
    assert client.post(url, good).status_code == 302
    project.refresh_from_db()
    assert (project.rater_quota, project.completion_code) == (25, "CODE9")
    response = client.post(url, {**good, "rater_quota": "0", "completion_url": "javascript:alert(1)"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="rater-quota-error"' in html and "at least 1" in html
    assert 'id="completion-url-error"' in html and "not an http(s) URL" in html
    assert 'value="javascript:alert(1)"' in html  # the form keeps what was typed
    project.refresh_from_db()
    assert (project.rater_quota, project.completion_url) == (25, "https://app.prolific.com/x?cc=CODE9")


# --- gold pairs -----------------------------------------------------------------------------


@pytest.fixture
def gold_setup():
    project = ProjectFactory(name="Gold study")
    manager = MembershipFactory(project=project, role="manager").user
    gens = [GeneratorFactory(project=project, name=name) for name in ("Alpha", "Beta", "Gamma")]
    prompt = PromptFactory(project=project, external_id="p-fox", text="a fox jumps")
    pairs = [
        make_pair(project=project, prompt=prompt, gen_a=gens[i], gen_b=gens[j]) for i, j in ((0, 1), (0, 2), (1, 2))
    ]
    return project, manager, pairs


def test_find_a_pair_by_id_or_prompt_and_generator(client, gold_setup):
    project, manager, pairs = gold_setup
    client.force_login(manager)
    url = reverse("frontend:project-gold", args=[project.pk])
    html = client.get(url, {"pair": pairs[0].pk}).content.decode()
    assert 'id="gold-form"' in html and "Alpha" in html and "Beta" in html and "/media/v/" in html
    html = client.get(url, {"prompt": "p-fox"}).content.decode()
    assert 'id="found"' in html and html.count("Choose</a>") == 3 and 'id="gold-form"' not in html
    html = client.get(url, {"prompt": "p-fox", "generator": "Gamma"}).content.decode()
    assert html.count("Choose</a>") == 2
    for query, says in (
        ({"pair": "abc"}, "is not a number"),
        ({"pair": "999999"}, "No pair 999999 in this project"),
        ({"prompt": "nope"}, "No pair of prompt &#x27;nope&#x27;"),
    ):
        html = client.get(url, query).content.decode()
        assert says in html and 'id="search-error"' in html
    # Another project's pair is not found here.
    other_pair = make_pair()
    assert "No pair" in client.get(url, {"pair": other_pair.pk}).content.decode()


def test_mark_gold_with_several_accepted_answers_then_unmark(client, gold_setup):
    project, manager, pairs = gold_setup
    pair = pairs[0]
    client.force_login(manager)
    response = client.post(
        reverse("frontend:project-gold-set", args=[project.pk, pair.pk]),
        {"answer-final_verdict": ["b", "tie"], "answer-visual_appeal": ["a"]},
    )
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.is_gold and pair.gold_answers == {"final_verdict": ["b", "tie"], "visual_appeal": ["a"]}
    html = client.get(reverse("frontend:project-gold", args=[project.pk])).content.decode()
    listed = re.search(rf'<tr id="gold-{pair.pk}".*?</tr>', html, re.S).group(0)
    assert "B or Tie" in listed and "<code>visual_appeal</code>: A" in listed
    # The form shows the stored answers checked.
    html = client.get(reverse("frontend:project-gold", args=[project.pk]), {"pair": pair.pk}).content.decode()
    assert re.search(r'name="answer-final_verdict" value="tie" checked', html)
    assert not re.search(r'name="answer-final_verdict" value="a" checked', html)
    client.post(reverse("frontend:project-gold-unmark", args=[project.pk, pair.pk]))
    pair.refresh_from_db()
    assert not pair.is_gold and pair.gold_answers == {}


def test_refused_gold_answers_show_errors_per_question_and_store_nothing(client, gold_setup):
    project, manager, pairs = gold_setup
    pair = pairs[1]
    client.force_login(manager)
    url = reverse("frontend:project-gold-set", args=[project.pk, pair.pk])
    # Nothing checked: not an unmark by accident.
    response = client.post(url, {})
    assert response.status_code == 400 and "Check at least one accepted answer" in response.content.decode()
    # Every answer accepted (grades nothing) and a value that is not an answer.
    response = client.post(url, {"answer-final_verdict": ["a", "b", "tie"], "answer-consistency": ["maybe"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="err-final_verdict"' in html and "would grade nothing" in html
    assert 'id="err-consistency"' in html and "not one of a, b, tie" in html
    assert re.search(r'name="answer-final_verdict" value="b" checked', html)  # kept as typed
    pair.refresh_from_db()
    assert not pair.is_gold and pair.gold_answers == {}


def test_gold_on_a_pair_of_another_project_is_404(client, gold_setup):
    project, manager, _ = gold_setup
    other_pair = make_pair()
    client.force_login(manager)
    response = client.post(
        reverse("frontend:project-gold-set", args=[project.pk, other_pair.pk]), {"answer-final_verdict": ["a"]}
    )
    assert response.status_code == 404
    other_pair.refresh_from_db()
    assert not other_pair.is_gold
