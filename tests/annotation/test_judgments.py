"""Judgment submission (canonical storage, validation, idempotency, expiry), raters joining."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from annotation.models import Assignment, Judgment, Membership, Pair, Question
from annotation.selectors.assignments import assignment_context, project_raters, skips_recent
from annotation.services.assignments import AssignmentClosed, assignment_next, assignment_skip
from annotation.services.judgments import (
    AnswersDiffer,
    AnswersInvalid,
    LeaseExpired,
    answers_canonical,
    judgment_submit,
)
from annotation.services.raters import raters_add
from tests.factories import (
    ALL_LEFT,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    assignment_invariants_check,
    in_threads,
    make_pairs,
    make_rater,
)

pytestmark = pytest.mark.django_db


def _lease(project, rater, now=None) -> Assignment:
    lease = assignment_next(project=project, rater=rater, now=now)
    assert lease is not None
    return Assignment.objects.select_related("project").get(pk=lease.assignment_id)


@pytest.mark.parametrize("left_is_a", [True, False])
def test_answers_are_stored_in_canonical_terms_with_what_was_shown_where(impl, left_is_a):
    project = ProjectFactory()
    pair = make_pairs(project, 1)[0]
    rater = make_rater(project)
    assignment = _lease(project, rater)
    Assignment.objects.filter(pk=assignment.pk).update(left_is_a=left_is_a)
    assignment.left_is_a = left_is_a
    answers = dict(ALL_LEFT, text_match="right", consistency="tie")
    result = judgment_submit(
        assignment=assignment, answers=answers, duration_ms=41250, watch_left_seconds=8.5, watch_right_seconds=3.0
    )
    assert result.created
    judgment = Judgment.objects.get(pk=result.judgment_id)
    left, right = ("a", "b") if left_is_a else ("b", "a")
    assert judgment.answers == {
        "visual_appeal": left,
        "text_match": right,
        "camera_motion": left,
        "object_motion": left,
        "consistency": "tie",
        "final_verdict": left,
    }
    assert (judgment.left_is_a, judgment.duration_ms, judgment.source) == (left_is_a, 41250, "app")
    watch_a, watch_b = (8.5, 3.0) if left_is_a else (3.0, 8.5)
    assert (judgment.watch_a_seconds, judgment.watch_b_seconds) == (watch_a, watch_b)
    assert (judgment.pair_id, judgment.rater_id, judgment.assignment_id) == (pair.pk, rater.pk, assignment.pk)
    assignment.refresh_from_db()
    assert (assignment.status, assignment.holds_slot) == ("judged", False) and assignment.finished_at
    pair.refresh_from_db()
    assert (pair.judgment_count, pair.lease_count) == (1, 0)


def test_every_required_question_each_answer_checked():
    project = ProjectFactory(
        rubric=[
            {"key": "look", "text": "Looks?"},
            {"key": "verdict", "text": "Better?", "allowed": ["a", "b"]},
            {"key": "note_motion", "text": "Motion?", "required": False},
        ]
    )
    questions = list(Question.objects.filter(project=project))
    assert answers_canonical(answers={"look": "tie", "verdict": "left"}, questions=questions, left_is_a=False) == {
        "look": "tie",
        "verdict": "b",
    }
    with pytest.raises(AnswersInvalid) as info:
        answers_canonical(
            answers={"verdict": "tie", "note_motion": "up", "colour": "left"}, questions=questions, left_is_a=True
        )
    errors = info.value.errors
    assert set(errors) == {"look", "verdict", "note_motion", "colour"}
    assert "required" in errors["look"]
    assert "not allowed" in errors["verdict"] and "left, right" in errors["verdict"]
    assert "not one of" in errors["note_motion"]
    assert errors["colour"] == "unknown question"


def test_invalid_answers_store_nothing(impl):
    project = ProjectFactory()
    make_pairs(project, 1)
    assignment = _lease(project, make_rater(project))
    with pytest.raises(AnswersInvalid):
        judgment_submit(assignment=assignment, answers={"visual_appeal": "left"})
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(pk=assignment.pk).status == "active"


def test_same_submission_twice_is_one_judgment_different_answers_conflict(impl):
    project = ProjectFactory()
    make_pairs(project, 1)
    assignment = _lease(project, make_rater(project))
    first = judgment_submit(assignment=assignment, answers=ALL_LEFT, duration_ms=1000)
    # The page retries with the object it had (status still "active" there): same answer.
    second = judgment_submit(assignment=assignment, answers=ALL_LEFT, duration_ms=1000)
    assert (second.judgment_id, second.created) == (first.judgment_id, False)
    reloaded = Assignment.objects.select_related("project").get(pk=assignment.pk)
    third = judgment_submit(assignment=reloaded, answers=ALL_LEFT)
    assert (third.judgment_id, third.created) == (first.judgment_id, False)
    with pytest.raises(AnswersDiffer):
        judgment_submit(assignment=reloaded, answers=dict(ALL_LEFT, final_verdict="right"))
    with pytest.raises(AnswersDiffer):
        judgment_submit(assignment=assignment, answers=dict(ALL_LEFT, final_verdict="tie"))
    assert Judgment.objects.count() == 1
    assert Pair.objects.get().judgment_count == 1


def test_expired_lease_still_holding_its_slot_is_accepted(impl):
    project = ProjectFactory(overlap=1, lease_seconds=60)
    make_pairs(project, 1)
    now = timezone.now()
    assignment = _lease(project, make_rater(project), now=now)
    result = judgment_submit(assignment=assignment, answers=ALL_LEFT, now=now + timedelta(hours=1))
    assert result.created
    assignment_invariants_check(project)


def test_expired_reclaimed_lease_accepted_while_pair_under_overlap(impl):
    project = ProjectFactory(overlap=2, lease_seconds=60)
    make_pairs(project, 1)
    now = timezone.now()
    late = _lease(project, make_rater(project), now=now)
    _lease(project, make_rater(project), now=now + timedelta(seconds=61))  # reclaims the first lease
    assert not Assignment.objects.get(pk=late.pk).holds_slot
    assert judgment_submit(assignment=late, answers=ALL_LEFT).created  # 0 judgments + 1 lease < 2
    assignment_invariants_check(project)


def test_expired_reclaimed_lease_refused_once_pair_is_full(impl):
    project = ProjectFactory(overlap=1, lease_seconds=60)
    make_pairs(project, 1)
    now = timezone.now()
    late = _lease(project, make_rater(project), now=now)
    fresh = _lease(project, make_rater(project), now=now + timedelta(seconds=61))
    with pytest.raises(LeaseExpired) as info:
        judgment_submit(assignment=late, answers=ALL_LEFT)
    assert "expired" in info.value.message
    assert judgment_submit(assignment=fresh, answers=ALL_LEFT).created  # the valid lease is never refused
    assert Judgment.objects.count() == 1
    assignment_invariants_check(project)


def test_skipped_assignment_cannot_be_judged_nor_judged_skipped(impl):
    project = ProjectFactory()
    make_pairs(project, 2)
    rater = make_rater(project)
    skipped = _lease(project, rater)
    assignment_skip(assignment=skipped, reason="inappropriate", note="violence")
    with pytest.raises(AssignmentClosed):
        judgment_submit(assignment=skipped, answers=ALL_LEFT)
    judged = _lease(project, rater)
    judgment_submit(assignment=judged, answers=ALL_LEFT)
    with pytest.raises(AssignmentClosed):
        assignment_skip(assignment=judged, reason="cannot_judge")
    assignment_invariants_check(project)


def test_managers_see_recent_skips_with_reasons_and_rater_counts(impl):
    project = ProjectFactory()
    make_pairs(project, 3)
    alice = make_rater(project)
    skipped = _lease(project, alice)
    assignment_skip(assignment=skipped, reason="video_broken", note="right one is black")
    judgment_submit(assignment=_lease(project, alice), answers=ALL_LEFT)
    [skip] = skips_recent(project=project)
    assert (skip["rater"], skip["reason"], skip["note"], skip["pair"]) == (
        alice.username,
        "video_broken",
        "right one is black",
        skipped.pair_id,
    )
    assert skip["reason_label"] == "A video is broken"
    [row] = project_raters(project=project)
    assert (row["username"], row["judged"], row["skipped"]) == (alice.username, 1, 1)


def test_assignment_context_is_only_for_its_rater():
    project = ProjectFactory()
    make_pairs(project, 1)
    rater, other = make_rater(project), make_rater(project)
    assignment = _lease(project, rater)
    ctx = assignment_context(assignment_id=assignment.pk, rater=rater)
    assert ctx.assignment.pk == assignment.pk and ctx.assignment.project.overlap == project.overlap
    assert [q.key for q in ctx.questions] == list(ALL_LEFT)
    assert assignment_context(assignment_id=assignment.pk, rater=other) is None
    Membership.objects.filter(user=rater).delete()  # left the project
    assert assignment_context(assignment_id=assignment.pk, rater=rater) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_same_submission_at_once_from_many_threads_stores_one_judgment(impl):
    project = ProjectFactory()
    make_pairs(project, 1)
    assignment = _lease(project, make_rater(project))
    results = in_threads(lambda: judgment_submit(assignment=assignment, answers=ALL_LEFT), [()] * 8)
    assert sum(r.created for r in results) == 1
    assert len({r.judgment_id for r in results}) == 1
    assert Judgment.objects.count() == 1
    assignment_invariants_check(project)


# --- raters join ----------------------------------------------------------------------------


def test_raters_add_creates_accounts_and_adds_existing_ones():
    project = ProjectFactory()
    existing = UserFactory(username="bob")
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    results = raters_add(project=project, usernames=["alice", "bob", "alice", manager.username, "bad name!", " "])
    by_name = {r.username: r for r in results}
    assert [r.username for r in results] == ["alice", "bob", manager.username, "bad name!"]
    assert by_name["alice"].status == "created" and len(by_name["alice"].password) >= 16
    assert get_user_model().objects.get(username="alice").check_password(by_name["alice"].password)
    assert (by_name["bob"].status, by_name["bob"].password) == ("added", None)
    assert by_name[manager.username].status == "manager"
    assert by_name["bad name!"].status == "invalid"
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"alice": "rater", "bob": "rater", manager.username: "manager"}
    assert raters_add(project=project, usernames=["bob"])[0].status == "already_rater"
    assert raters_add(project=project, usernames=["carol"], create_missing=False)[0].status == "unknown"
    assert existing.memberships.get().role == "rater"


def test_add_raters_command_prints_new_passwords():
    project = ProjectFactory(name="Gen2 vs Pika")
    UserFactory(username="dora")
    out = StringIO()
    call_command("add_raters", "Gen2 vs Pika", "erin", "dora", stdout=out)
    lines = dict(line.split("\t", 1) for line in out.getvalue().strip().splitlines())
    password = lines["erin"].split("password: ")[1]
    assert get_user_model().objects.get(username="erin").check_password(password)
    assert lines["dora"] == "added"
    call_command("add_raters", str(project.pk), "frank", stdout=StringIO())
    assert Membership.objects.filter(project=project, role="rater").count() == 3
    with pytest.raises(CommandError):
        call_command("add_raters", "no such project", "x", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("add_raters", str(project.pk), "ghost", "--existing-only", stdout=StringIO(), stderr=StringIO())
