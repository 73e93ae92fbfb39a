"""Crowd entry: invite tokens, worker accounts keyed by (project, worker id), crowd settings, completion."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import connection
from rest_framework.test import APIClient

from annotation.models import Assignment, Membership, Project
from annotation.selectors.crowd import COMPLETION_ALL_DONE, COMPLETION_QUOTA, rater_completion
from annotation.services import crowd
from annotation.services.assignments import assignment_next
from annotation.services.crowd import (
    CrowdEntryError,
    CrowdSettingsError,
    InviteInvalid,
    crowd_rater_enter,
    invite_token_check,
    project_crowd_settings_update,
    project_for_invite,
    project_invite_disable,
    project_invite_rotate,
)
from annotation.services.judgments import judgment_submit
from annotation.services.quality import pair_gold_set
from tests.factories import (
    ALL_LEFT,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    judge_next,
    make_crowd_project,
    make_pairs,
)
from tests.factories import PROLIFIC_PID as PID

pytestmark = pytest.mark.django_db

@pytest.fixture
def project():
    return make_crowd_project()


def _enter(project, external_id=PID, **kwargs):
    return crowd_rater_enter(project=project, token=project.invite_token, external_id=external_id, **kwargs)


# --- tokens ---------------------------------------------------------------------------------


def test_rotate_makes_a_long_random_token_and_invalidates_the_old_one(project):
    old = project.invite_token
    assert old.startswith(f"{project.pk}-") and len(old) >= 40 and len(old) <= 64
    assert project_for_invite(token=old) == project
    new = project_invite_rotate(project=project)
    assert new != old and Project.objects.get(pk=project.pk).invite_token == new
    project.refresh_from_db()
    with pytest.raises(InviteInvalid):
        project_for_invite(token=old)
    with pytest.raises(InviteInvalid):
        crowd_rater_enter(project=project, token=old, external_id=PID)
    assert project_for_invite(token=new) == project
    assert not Membership.objects.filter(project=project, external_id=PID).exists()


def test_disable_refuses_every_token_and_keeps_accounts(project):
    user = _enter(project)
    token = project.invite_token
    project_invite_disable(project=project)
    project.refresh_from_db()
    assert project.invite_token is None
    for candidate in (token, "", "None", f"{project.pk}-"):
        with pytest.raises(InviteInvalid):
            project_for_invite(token=candidate)
        with pytest.raises(InviteInvalid):
            invite_token_check(project=project, token=candidate)
    assert Membership.objects.filter(project=project, user=user).exists()


@pytest.mark.parametrize(
    "make_token",
    [
        lambda p, other: other.invite_token,  # another project's valid token
        lambda p, other: p.invite_token[:-1] + ("A" if p.invite_token[-1] != "A" else "B"),  # one character off
        lambda p, other: p.invite_token + "x",
        lambda p, other: p.invite_token.split("-", 1)[1],  # the secret without the id
        lambda p, other: f"{other.pk}-" + p.invite_token.split("-", 1)[1],  # the secret under another id
        lambda p, other: "999999999999999999999-abc",
        lambda p, other: "",
    ],
)
def test_wrong_tokens_are_refused(project, make_token):
    other = ProjectFactory()
    project_invite_rotate(project=other)
    other.refresh_from_db()
    token = make_token(project, other)
    with pytest.raises(InviteInvalid) as info:
        crowd_rater_enter(project=project, token=token, external_id=PID)
    assert info.value.message == "This invite link is not valid."
    assert not Membership.objects.filter(external_id=PID).exists()


# --- accounts -------------------------------------------------------------------------------


def test_same_worker_id_twice_is_the_same_account(project):
    first = _enter(project, study_id="study1", session_id="sess1")
    second = _enter(project, study_id="study1", session_id="sess2")
    assert first.pk == second.pk
    assert first.username.startswith(f"crowd-{project.pk}-") and PID not in first.username
    assert not first.has_usable_password() and not first.is_staff and not first.is_superuser
    membership = Membership.objects.get(project=project, user=first)
    assert (membership.role, membership.external_id) == (Membership.ROLE_RATER, PID)
    assert Membership.objects.filter(project=project).count() == 1


def test_same_worker_id_in_another_project_is_another_account(project):
    other = ProjectFactory()
    project_invite_rotate(project=other)
    other.refresh_from_db()
    here = _enter(project)
    there = _enter(other)
    assert here.pk != there.pk
    # Neither account reaches the other project.
    assert list(Membership.objects.filter(user=here).values_list("project_id", flat=True)) == [project.pk]
    assert list(Membership.objects.filter(user=there).values_list("project_id", flat=True)) == [other.pk]


def test_a_crowd_account_cannot_be_added_to_another_project_as_a_rater(project):
    from annotation.services.raters import raters_add  # noqa: PLC0415

    worker = _enter(project)
    other = ProjectFactory()
    [result] = raters_add(project=other, usernames=[worker.username])
    assert result.status == "invalid" and "crowd accounts" in result.message
    assert not Membership.objects.filter(project=other, user=worker).exists()
    # Its own project still lists it as a rater; the reserved prefix cannot be made by hand.
    assert raters_add(project=project, usernames=[worker.username])[0].status == "already_rater"
    assert raters_add(project=other, usernames=["crowd-9-abc"])[0].status == "invalid"


def test_worker_id_equal_to_an_existing_username_does_not_reach_that_account(project):
    manager = UserFactory(username="manager")
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    rater = UserFactory(username="rater1")
    MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER)
    for name, named in (("manager", manager), ("rater1", rater)):
        user = _enter(project, external_id=name)
        assert user.pk != named.pk and user.username.startswith("crowd-")
    # The named accounts are untouched: same password, same role, no worker id.
    assert authenticate(username="manager", password="pw") == manager
    assert Membership.objects.get(user=manager).role == Membership.ROLE_MANAGER
    assert Membership.objects.get(user=rater).external_id == ""


def test_a_crowd_account_cannot_log_in_or_get_an_api_token_with_a_password(project):
    user = _enter(project)
    assert authenticate(username=user.username, password="") is None
    for password in ("", "!", PID):
        response = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": password})
        assert response.status_code == 400


def test_a_worker_id_tied_to_a_non_crowd_account_is_refused(project):
    user = _enter(project)
    user.set_password("now-usable")
    user.save()
    with pytest.raises(CrowdEntryError) as info:
        _enter(project)
    assert info.value.code == "account_not_crowd"
    # A manager's membership that somehow carries the id is not entered either.
    named = UserFactory(username="named")
    MembershipFactory(project=project, user=named, role=Membership.ROLE_MANAGER, external_id="W123")
    with pytest.raises(CrowdEntryError):
        _enter(project, external_id="W123")


def test_a_deactivated_crowd_account_is_refused(project):
    user = _enter(project)
    user.is_active = False
    user.save(update_fields=["is_active"])
    with pytest.raises(CrowdEntryError) as info:
        _enter(project)
    assert info.value.code == "account_inactive"


@pytest.mark.parametrize(
    ("value", "code", "says"),
    [
        ("", "external_id_missing", "missing"),
        ("   ", "external_id_missing", "missing"),
        ("{{%PROLIFIC_PID%}}", "external_id_placeholder", "placeholder"),
        ("a" * 101, "external_id_invalid", "101 characters"),
        ("has space", "external_id_invalid", "not allowed"),
        ("../etc", "external_id_invalid", "not allowed"),
        ("<script>", "external_id_invalid", "not allowed"),
        ("-starts-with-dash", "external_id_invalid", "not allowed"),
        ("naïve", "external_id_invalid", "not allowed"),
    ],
)
def test_invalid_worker_ids_get_a_clear_error_and_store_nothing(project, value, code, says):
    users = get_user_model().objects.count()
    with pytest.raises(CrowdEntryError) as info:
        _enter(project, external_id=value)
    assert info.value.code == code and info.value.field == "worker id"
    assert says in info.value.message and "worker id" in info.value.message
    assert get_user_model().objects.count() == users
    assert not Membership.objects.filter(project=project).exists()


def test_valid_worker_id_shapes(project):
    for value in (PID, "A1B2C3D4E5F6G7", "worker_7", "w.7:x@y-z", " padded "):
        user = _enter(project, external_id=value)
        assert Membership.objects.get(user=user).external_id == value.strip()


def test_invalid_study_or_session_id_names_the_parameter(project):
    with pytest.raises(CrowdEntryError) as info:
        _enter(project, study_id="bad id")
    assert info.value.field == "study id" and "study id" in info.value.message
    with pytest.raises(CrowdEntryError) as info:
        _enter(project, session_id="{{%SESSION_ID%}}")
    assert info.value.field == "session id"
    assert not Membership.objects.filter(project=project).exists()


def test_study_and_session_ids_are_logged(project, caplog):
    caplog.set_level("INFO", logger="annotation.services.crowd")
    user = _enter(project, study_id="STUDY9", session_id="SESSION4")
    assert any(
        "STUDY9" in r.getMessage() and "SESSION4" in r.getMessage() and f"user={user.pk}" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.django_db(transaction=True)
def test_two_tabs_entering_at_once_get_one_account(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections (PostgreSQL)")
    project = ProjectFactory()
    project_invite_rotate(project=project)
    project.refresh_from_db()
    # Both requests read "no such worker" before either inserts: the real race, forced.
    tabs = 3
    barrier = threading.Barrier(tabs, timeout=10)
    real_existing = crowd._existing
    reads = {"n": 0}
    lock = threading.Lock()

    def existing_then_wait(project_, external_id):
        found = real_existing(project_, external_id)
        with lock:
            reads["n"] += 1
            first_read = reads["n"] <= tabs
        if first_read:
            barrier.wait()
        return found

    monkeypatch.setattr(crowd, "_existing", existing_then_wait)
    results, errors = [], []

    def tab():
        try:
            results.append(crowd_rater_enter(project=project, token=project.invite_token, external_id=PID).pk)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab) for _ in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(results) == tabs and len(set(results)) == 1
    assert reads["n"] == 2 * tabs - 1  # every loser hit the constraint and read again
    assert Membership.objects.filter(project=project, external_id=PID).count() == 1
    # The losers' new users were rolled back with their memberships.
    assert get_user_model().objects.filter(username__startswith=f"crowd-{project.pk}-").count() == 1


# --- settings -------------------------------------------------------------------------------


def test_crowd_settings_are_stored(project):
    project_crowd_settings_update(
        project=project,
        rater_quota="20",
        completion_code=" C1A2B3 ",
        completion_url="https://app.prolific.com/submissions/complete?cc=C1A2B3",
    )
    project.refresh_from_db()
    assert (project.rater_quota, project.completion_code) == (20, "C1A2B3")
    assert project.completion_url.endswith("cc=C1A2B3")
    project_crowd_settings_update(project=project, rater_quota="", completion_code="", completion_url="")
    project.refresh_from_db()
    assert (project.rater_quota, project.completion_code, project.completion_url) == (None, "", "")


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"rater_quota": "0"}, "rater_quota", "at least 1"),
        ({"rater_quota": "-3"}, "rater_quota", "at least 1"),
        ({"rater_quota": "ten"}, "rater_quota", "not a whole number"),
        ({"rater_quota": "2.5"}, "rater_quota", "not a whole number"),
        ({"completion_url": "javascript:alert(1)"}, "completion_url", "not an http(s) URL"),
        ({"completion_url": "ftp://example.org/x"}, "completion_url", "not an http(s) URL"),
        ({"completion_url": "https://" + "a" * 600 + ".org"}, "completion_url", "At most 500"),
        ({"completion_code": "C" * 101}, "completion_code", "At most 100"),
    ],
)
def test_bad_crowd_settings_say_which_field_and_store_nothing(project, fields, field, says):
    project_crowd_settings_update(project=project, rater_quota=5, completion_code="KEEP", completion_url="")
    values = {"rater_quota": "7", "completion_code": "NEW", "completion_url": "https://example.org/", **fields}
    with pytest.raises(CrowdSettingsError) as info:
        project_crowd_settings_update(project=project, **values)
    assert set(info.value.errors) == {field} and says in info.value.errors[field]
    project.refresh_from_db()
    assert (project.rater_quota, project.completion_code, project.completion_url) == (5, "KEEP", "")


# --- completion -----------------------------------------------------------------------------


def _submit(lease):
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    judgment_submit(assignment=assignment, answers=ALL_LEFT)


def test_completion_after_the_quota(project):
    make_pairs(project, 4)
    project_crowd_settings_update(project=project, rater_quota=2, completion_code="DONE42", completion_url="")
    project.refresh_from_db()
    worker = _enter(project)
    assert rater_completion(project=project, rater=worker) is None
    judge_next(project, worker)
    assert rater_completion(project=project, rater=worker) is None  # pairs are left, quota not reached
    judge_next(project, worker)
    done = rater_completion(project=project, rater=worker)
    assert (done.reason, done.judged, done.code, done.url) == (COMPLETION_QUOTA, 2, "DONE42", "")


def test_completion_when_nothing_is_left_but_not_before_any_work(project):
    make_pairs(project, 2)
    project_crowd_settings_update(
        project=project, rater_quota=None, completion_code="", completion_url="https://example.org/back"
    )
    project.refresh_from_db()
    worker = _enter(project)
    late = _enter(project, external_id="late-worker")
    judge_next(project, worker)
    assert rater_completion(project=project, rater=worker) is None
    lease = assignment_next(project=project, rater=worker)  # holding a lease: not done
    assert rater_completion(project=project, rater=worker) is None
    _submit(lease)
    done = rater_completion(project=project, rater=worker)
    assert (done.reason, done.judged, done.url) == (COMPLETION_ALL_DONE, 2, "https://example.org/back")
    # Another worker who has judged nothing gets no code (overlap 3: pairs are still open to them).
    assert rater_completion(project=project, rater=late) is None


def test_no_completion_when_paused_or_not_configured_or_not_a_rater(project):
    make_pairs(project, 1)
    worker = _enter(project)
    judge_next(project, worker)
    assert rater_completion(project=project, rater=worker) is None  # no code nor link configured
    project_crowd_settings_update(project=project, rater_quota=1, completion_code="X1", completion_url="")
    project.refresh_from_db()
    assert rater_completion(project=project, rater=worker).code == "X1"
    Membership.objects.filter(user=worker).update(paused=True)
    assert rater_completion(project=project, rater=worker) is None
    outsider = UserFactory()
    assert rater_completion(project=project, rater=outsider) is None


def test_unseen_gold_pairs_do_not_hold_back_the_completion(project):
    normal, gold = make_pairs(project, 2)
    pair_gold_set(pair=gold, gold_answers={"final_verdict": ["a"]})
    project_crowd_settings_update(project=project, rater_quota=None, completion_code="G1", completion_url="")
    project.refresh_from_db()
    worker = _enter(project)
    lease = assignment_next(project=project, rater=worker, gold=False)
    assert lease.pair_id == normal.pk
    _submit(lease)
    # The engine has no normal pair left for them (gold pairs are extras it mixes in).
    assert assignment_next(project=project, rater=worker, gold=False) is None
    assert rater_completion(project=project, rater=worker).reason == COMPLETION_ALL_DONE
