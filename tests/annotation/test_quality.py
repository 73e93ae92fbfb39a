"""Quality control services: gold answers, gold pairs in the assignment engine, attention flags at
submission, gold grading with the automatic pause, pause/resume/exclude/include, and roles.

Engine and submission rules run against both implementations (``impl``: the PostgreSQL
statements and the portable ORM path).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Assignment, Judgment, Membership, Pair, Project
from annotation.selectors.assignments import open_pairs_count, rater_project_context
from annotation.selectors.projects import project_role, projects_for_user
from annotation.selectors.quality import (
    NOT_WATCHED_FRACTION,
    NOT_WATCHED_SLACK_SECONDS,
    gold_judgment_correct,
    judgment_flags,
    rater_gold_record,
)
from annotation.services import assignments as assignments_service
from annotation.services import quality as quality_service
from annotation.services.assignments import assignment_next, assignment_skip, gold_draw
from annotation.services.judgments import judgment_submit
from annotation.services.quality import (
    MANUAL_PAUSE_REASON,
    GoldAnswersError,
    RaterNotFound,
    gold_answers_clean,
    pair_gold_set,
    rater_exclude,
    rater_gold_check,
    rater_include,
    rater_pause,
    rater_resume,
)
from tests.factories import ALL_LEFT, MembershipFactory, ProjectFactory, UserFactory, make_pair, make_pairs, make_rater

pytestmark = pytest.mark.django_db


GOLD = {"final_verdict": ["a"]}
ALL_RIGHT = dict.fromkeys(ALL_LEFT, "right")


def _submit(lease, answers=ALL_LEFT, **fields):
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    fields = {"duration_ms": 10_000, "watch_left_seconds": 10.0, "watch_right_seconds": 10.0, **fields}
    return judgment_submit(assignment=assignment, answers=answers, **fields)


def _answers_for(lease, canonical: str) -> dict[str, str]:
    """Page answers that mean ``canonical`` (a/b/tie) on every question of this lease."""
    if canonical == "tie":
        return dict.fromkeys(ALL_LEFT, "tie")
    left = (canonical == "a") == lease.left_is_a
    return dict.fromkeys(ALL_LEFT, "left" if left else "right")


@pytest.fixture
def invalidations(monkeypatch):
    """Every dashboard_invalidate call of the quality services, by project id."""
    calls: list[int] = []
    monkeypatch.setattr(quality_service, "dashboard_invalidate", lambda *, project_id: calls.append(project_id))
    return calls


# --- gold answers ---------------------------------------------------------------------------


def test_gold_answers_accept_a_string_a_pipe_list_or_a_list_and_store_canonical_lists():
    project = ProjectFactory(rubric=[
        {"key": "final_verdict", "text": "Overall?"},
        {"key": "a_or_tie", "text": "A fine?", "allowed": ["a", "tie"]},
    ])
    questions = list(project.questions.all())
    cleaned = gold_answers_clean(gold_answers={"final_verdict": " TIE|a ", "a_or_tie": ["a"]}, questions=questions)
    assert cleaned == {"final_verdict": ["a", "tie"], "a_or_tie": ["a"]}
    assert gold_answers_clean(gold_answers=None, questions=questions) == {}
    assert gold_answers_clean(gold_answers={}, questions=questions) == {}
    # A row naming B first: "a" there is canonical "b".
    assert gold_answers_clean(gold_answers={"final_verdict": "a"}, questions=questions, swapped=True) == {
        "final_verdict": ["b"]}
    assert gold_answers_clean(gold_answers={"a_or_tie": "b"}, questions=questions, swapped=True) == {
        "a_or_tie": ["a"]}


@pytest.mark.parametrize(
    ("value", "key", "fragment"),
    [
        ({"final_verdit": "a"}, "final_verdit", "not a question of this project"),
        ({"final_verdict": "left"}, "final_verdict", "'left' is not one of a, b, tie"),
        ({"final_verdict": []}, "final_verdict", "no accepted answer"),
        ({"final_verdict": 3}, "final_verdict", "expected"),
        ({"final_verdict": "a|b|tie"}, "final_verdict", "would grade nothing"),
        ({"a_or_tie": "b"}, "a_or_tie", "b is not allowed for this question (allowed: a, tie)"),
        (["a"], "", "expected an object"),
    ],
)
def test_gold_answers_errors_name_the_key_and_the_reason(value, key, fragment):
    project = ProjectFactory(rubric=[
        {"key": "final_verdict", "text": "Overall?"},
        {"key": "a_or_tie", "text": "A fine?", "allowed": ["a", "tie"]},
    ])
    with pytest.raises(GoldAnswersError) as caught:
        gold_answers_clean(gold_answers=value, questions=list(project.questions.all()))
    assert key in caught.value.errors and fragment in caught.value.errors[key], caught.value.errors


def test_pair_gold_set_marks_unmarks_and_a_refusal_changes_nothing(invalidations):
    pair = make_pair()
    pair_gold_set(pair=pair, gold_answers={"final_verdict": "a|tie", "consistency": "b"})
    pair.refresh_from_db()
    assert (pair.is_gold, pair.gold_answers) == (True, {"final_verdict": ["a", "tie"], "consistency": ["b"]})
    with pytest.raises(GoldAnswersError):
        pair_gold_set(pair=pair, gold_answers={"final_verdict": "a", "nope": "b"})
    pair.refresh_from_db()
    assert pair.gold_answers == {"final_verdict": ["a", "tie"], "consistency": ["b"]}
    pair_gold_set(pair=pair, gold_answers={})
    pair.refresh_from_db()
    assert (pair.is_gold, pair.gold_answers) == (False, {})
    assert invalidations == [pair.project_id, pair.project_id]  # two changes; the refusal changed nothing


def test_gold_grading_per_judgment():
    gold = {"final_verdict": ["a", "tie"], "consistency": ["b"]}
    assert gold_judgment_correct(answers={"final_verdict": "tie", "consistency": "b"}, gold_answers=gold) is True
    assert gold_judgment_correct(answers={"final_verdict": "a", "consistency": "a"}, gold_answers=gold) is False
    assert gold_judgment_correct(answers={"final_verdict": "a"}, gold_answers=gold) is True  # only what was answered
    assert gold_judgment_correct(answers={"visual_appeal": "a"}, gold_answers=gold) is None  # nothing graded
    assert gold_judgment_correct(answers={"final_verdict": "b"}, gold_answers={"final_verdict": "a"}) is False


# --- gold pairs in the engine ---------------------------------------------------------------


def _gold_pairs(project, n: int, judged: int = 0) -> list[Pair]:
    pairs = make_pairs(project, n)
    Pair.objects.filter(pk__in=[p.pk for p in pairs]).update(is_gold=True, gold_answers=GOLD, judgment_count=judged)
    return list(Pair.objects.filter(pk__in=[p.pk for p in pairs]))


def test_a_gold_draw_offers_a_gold_pair_whatever_its_overlap(impl):
    project = ProjectFactory(overlap=2)
    normal = make_pairs(project, 3)
    gold = _gold_pairs(project, 1)[0]
    raters = [make_rater(project) for _ in range(4)]
    for rater in raters:  # more raters than the overlap: every one of them gets the gold pair
        lease = assignment_next(project=project, rater=rater, gold=True)
        assert lease.pair_id == gold.pk
        assert _submit(lease).created
    gold.refresh_from_db()
    assert (gold.judgment_count, gold.lease_count) == (4, 0)
    # Once judged, a rater's next gold draw falls back to a normal pair.
    lease = assignment_next(project=project, rater=raters[0], gold=True)
    assert lease.pair_id in {p.pk for p in normal}
    assert Pair.objects.get(pk=lease.pair_id).lease_count == 1


def test_gold_pairs_are_never_offered_as_normal_pairs_nor_counted_as_open(impl):
    project = ProjectFactory(overlap=3)
    gold = _gold_pairs(project, 2)
    rater = make_rater(project)
    assert assignment_next(project=project, rater=rater, gold=False) is None
    normal = make_pairs(project, 1)[0]
    lease = assignment_next(project=project, rater=rater, gold=False)
    assert lease.pair_id == normal.pk and lease.prefetch is None  # the hint never names a gold pair
    assert open_pairs_count(project=Project.objects.get(pk=project.pk)) == 1
    assert lease.available == 1
    _submit(lease)
    gold_lease = assignment_next(project=project, rater=rater, gold=True)
    assert gold_lease.pair_id in {g.pk for g in gold}
    # The progress a rater sees moves as for any pair: judged counts every pair judged.
    _submit(gold_lease)
    after = assignment_next(project=project, rater=rater, gold=True)
    assert after.judged == 2 and after.pair_id in {g.pk for g in gold} - {gold_lease.pair_id}


def test_a_skipped_gold_pair_is_not_offered_again_and_least_judged_gold_comes_first(impl):
    project = ProjectFactory()
    gold = _gold_pairs(project, 3)
    Pair.objects.filter(pk=gold[0].pk).update(judgment_count=7)
    Pair.objects.filter(pk=gold[1].pk).update(judgment_count=2)
    Pair.objects.filter(pk=gold[2].pk).update(judgment_count=5)
    rater = make_rater(project)
    lease = assignment_next(project=project, rater=rater, gold=True)
    assert lease.pair_id == gold[1].pk
    assignment_skip(assignment=Assignment.objects.get(pk=lease.assignment_id), reason="cannot_judge")
    assert assignment_next(project=project, rater=rater, gold=True).pair_id == gold[2].pk


def test_a_gold_lease_expires_and_is_reclaimed_like_any_other(impl):
    project = ProjectFactory(lease_seconds=60)
    gold = _gold_pairs(project, 1)[0]
    rater, other = make_rater(project), make_rater(project)
    now = timezone.now()
    lease = assignment_next(project=project, rater=rater, gold=True, now=now)
    assert lease.pair_id == gold.pk and Pair.objects.get(pk=gold.pk).lease_count == 1
    assert assignment_next(project=project, rater=rater, gold=False, now=now).assignment_id == lease.assignment_id
    later = now + timedelta(seconds=120)
    assert assignment_next(project=project, rater=other, gold=False, now=later) is None  # reclaims
    assert Pair.objects.get(pk=gold.pk).lease_count == 0
    # The late submission is still accepted: a gold pair has no overlap limit.
    assert _submit(lease).created


def test_gold_draw_follows_the_rate(monkeypatch):
    project = ProjectFactory()
    for rate, draw, expected in ((0.0, 0.0, False), (1.0, 0.999, True), (0.25, 0.2, True), (0.25, 0.3, False)):
        project.gold_rate = rate
        monkeypatch.setattr(assignments_service.random, "random", lambda d=draw: d)
        assert gold_draw(project=project) is expected


def test_assignment_next_draws_gold_at_the_project_rate(impl):
    project = ProjectFactory(gold_rate=1.0)
    gold = _gold_pairs(project, 1)[0]
    make_pairs(project, 1)
    rater = make_rater(project)
    ctx = rater_project_context(project_id=project.pk, user=rater)
    assert ctx.project.gold_rate == 1.0  # the rater loop's project carries the setting
    assert assignment_next(project=ctx.project, rater=rater).pair_id == gold.pk


# --- attention flags at submission ----------------------------------------------------------


def test_judgment_flags_rules():
    base = {"too_fast_seconds": 4.0, "video_a_duration": 10.0, "video_b_duration": 4.0}
    needed_a = NOT_WATCHED_FRACTION * 10.0 - NOT_WATCHED_SLACK_SECONDS  # 8.5 s
    assert judgment_flags(duration_ms=4000, watch_a_seconds=needed_a, watch_b_seconds=3.1, **base) == []
    assert judgment_flags(duration_ms=3999, watch_a_seconds=10, watch_b_seconds=4, **base) == ["too_fast"]
    assert judgment_flags(duration_ms=9000, watch_a_seconds=needed_a - 0.01, watch_b_seconds=4, **base) == [
        "not_watched"]
    assert judgment_flags(duration_ms=500, watch_a_seconds=10, watch_b_seconds=0.0, **base) == [
        "not_watched", "too_fast"]
    # No data is no evidence: imported judgments and clients that do not report are not flagged.
    assert judgment_flags(duration_ms=None, watch_a_seconds=None, watch_b_seconds=None, **base) == []
    assert judgment_flags(duration_ms=9000, watch_a_seconds=0, watch_b_seconds=0, too_fast_seconds=4.0,
                          video_a_duration=None, video_b_duration=None) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"duration_ms": 10_000, "watch_left_seconds": 1.0, "watch_right_seconds": 1.0}, []),
        ({"duration_ms": 1_500, "watch_left_seconds": 1.0, "watch_right_seconds": 1.0}, ["too_fast"]),
        ({"duration_ms": 10_000, "watch_left_seconds": 0.2, "watch_right_seconds": 1.0}, ["not_watched"]),
        ({"duration_ms": 100, "watch_left_seconds": 1.0, "watch_right_seconds": 0.0}, ["not_watched", "too_fast"]),
        ({"duration_ms": None, "watch_left_seconds": None, "watch_right_seconds": None}, []),
    ],
)
def test_submit_stores_the_flags(impl, fields, expected):
    project = ProjectFactory(too_fast_seconds=2.0)
    make_pairs(project, 1)  # factory videos last 1 s
    rater = make_rater(project)
    lease = assignment_next(project=project, rater=rater, gold=False)
    result = _submit(lease, **fields)
    assert Judgment.objects.get(pk=result.judgment_id).flags == expected


# --- gold grading and the automatic pause ---------------------------------------------------


def _gold_round(project, rater, canonical: str):
    lease = assignment_next(project=project, rater=rater, gold=True)
    assert Pair.objects.get(pk=lease.pair_id).is_gold
    return _submit(lease, answers=_answers_for(lease, canonical))


def test_a_rater_below_the_gold_threshold_is_paused_after_gold_min_golds(impl, invalidations):
    project = ProjectFactory(gold_min=3, gold_accuracy_threshold=0.7)
    _gold_pairs(project, 6)
    make_pairs(project, 3)
    rater = make_rater(project)
    _gold_round(project, rater, "b")  # wrong
    _gold_round(project, rater, "b")  # wrong: 0/2, but fewer than gold_min golds
    assert not Membership.objects.get(user=rater).paused
    _gold_round(project, rater, "a")  # 1/3 = 33 % < 70 % after 3 golds
    membership = Membership.objects.get(user=rater)
    assert membership.paused and membership.paused_at is not None
    assert membership.paused_reason == "automatic: gold accuracy 1/3 = 33 % below 70 % after 3 golds"
    assert project.pk in invalidations
    # A paused rater gets nothing more, normal or gold.
    assert assignment_next(project=project, rater=rater, gold=False) is None
    assert assignment_next(project=project, rater=rater, gold=True) is None
    assert rater_project_context(project_id=project.pk, user=rater).paused


def test_a_good_rater_is_not_paused_and_a_tie_may_be_accepted(impl):
    project = ProjectFactory(gold_min=2, gold_accuracy_threshold=0.7)
    for pair in _gold_pairs(project, 3):
        pair_gold_set(pair=pair, gold_answers={"final_verdict": "a|tie"})
    rater = make_rater(project)
    _gold_round(project, rater, "tie")
    _gold_round(project, rater, "a")
    _gold_round(project, rater, "tie")
    assert not Membership.objects.get(user=rater).paused
    assert rater_gold_record(project_id=project.pk, rater_id=rater.pk) == (3, 3)


def test_resume_counts_only_new_gold_judgments(impl):
    project = ProjectFactory(gold_min=2, gold_accuracy_threshold=0.5)
    _gold_pairs(project, 6)
    rater = make_rater(project)
    _gold_round(project, rater, "b")
    _gold_round(project, rater, "b")
    assert Membership.objects.get(user=rater).paused
    rater_resume(project=project, rater_id=rater.pk)
    # The same evidence does not pause them again: one new wrong gold is below gold_min.
    _gold_round(project, rater, "b")
    assert not Membership.objects.get(user=rater).paused
    assert rater_gold_record(project_id=project.pk, rater_id=rater.pk) == (3, 0)
    assert rater_gold_record(project_id=project.pk, rater_id=rater.pk, since_resume=True) == (1, 0)
    _gold_round(project, rater, "a")  # 1/2 = 50 %: not below 50 %
    assert not Membership.objects.get(user=rater).paused
    _gold_round(project, rater, "b")  # 1/3 < 50 %
    assert Membership.objects.get(user=rater).paused


def test_the_gold_check_leaves_a_manual_pause_and_its_reason_alone():
    project = ProjectFactory(gold_min=1, gold_accuracy_threshold=0.9)
    pair = _gold_pairs(project, 1)[0]
    rater = make_rater(project)
    Judgment.objects.create(project=project, pair=pair, rater=rater, answers={"final_verdict": "b"})
    rater_pause(project=project, rater_id=rater.pk, reason="asked to stop")
    assert rater_gold_check(project=project, rater_id=rater.pk) is None
    assert Membership.objects.get(user=rater).paused_reason == "asked to stop"


# --- pause, resume, exclude, include ----------------------------------------------------------


def test_pause_gives_back_the_live_lease_and_is_idempotent(impl, invalidations):
    project = ProjectFactory(overlap=1)
    pair = make_pairs(project, 1)[0]
    rater, other = make_rater(project), make_rater(project)
    lease = assignment_next(project=project, rater=rater, gold=False)
    assert assignment_next(project=project, rater=other, gold=False) is None  # the only slot is taken
    membership = rater_pause(project=project, rater_id=rater.pk)
    assert (membership.paused, membership.paused_reason) == (True, MANUAL_PAUSE_REASON)
    assert Pair.objects.get(pk=pair.pk).lease_count == 0
    assert assignment_next(project=project, rater=other, gold=False).pair_id == pair.pk  # back in the pool
    first_at = membership.paused_at
    again = rater_pause(project=project, rater_id=rater.pk, reason="another reason")
    assert (again.paused_reason, again.paused_at) == (MANUAL_PAUSE_REASON, first_at)
    assert invalidations == [project.pk]
    # The paused rater's submission of the lease they had: the pair is now full with the other's lease.
    from annotation.services.judgments import LeaseExpired  # noqa: PLC0415

    with pytest.raises(LeaseExpired):
        _submit(lease)
    resumed = rater_resume(project=project, rater_id=rater.pk)
    assert (resumed.paused, resumed.paused_reason) == (False, "") and resumed.resumed_at is not None
    assert rater_resume(project=project, rater_id=rater.pk).resumed_at == resumed.resumed_at
    assert invalidations == [project.pk, project.pk]


def test_exclude_and_include_are_reversible_and_keep_every_judgment(invalidations):
    project = ProjectFactory()
    pair = make_pairs(project, 1)[0]
    rater = make_rater(project)
    Judgment.objects.create(project=project, pair=pair, rater=rater, answers={"final_verdict": "a"})
    assert rater_exclude(project=project, rater_id=rater.pk).excluded
    assert rater_exclude(project=project, rater_id=rater.pk).excluded
    assert Judgment.objects.filter(rater=rater).count() == 1
    assert not rater_include(project=project, rater_id=rater.pk).excluded
    assert not rater_include(project=project, rater_id=rater.pk).excluded
    assert invalidations == [project.pk, project.pk]  # the repeats changed nothing


def test_rater_actions_refuse_managers_outsiders_and_other_projects_raters():
    project, other = ProjectFactory(), ProjectFactory()
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    elsewhere = make_rater(other)
    for user_id in (manager.pk, elsewhere.pk, UserFactory().pk, 987654321):
        for action in (rater_pause, rater_resume, rater_exclude, rater_include):
            with pytest.raises(RaterNotFound):
                action(project=project, rater_id=user_id)
    assert not Membership.objects.filter(Q(paused=True) | Q(excluded=True)).exists()


# --- roles ----------------------------------------------------------------------------------


def test_roles_rater_manager_and_admin():
    mine, theirs = ProjectFactory(name="Mine"), ProjectFactory(name="Theirs")
    manager = MembershipFactory(project=mine, role=Membership.ROLE_MANAGER).user
    MembershipFactory(project=theirs, user=manager, role=Membership.ROLE_RATER)  # rates the other project
    MembershipFactory(project=theirs, role=Membership.ROLE_MANAGER)
    rater = make_rater(mine)
    admin = UserFactory(is_superuser=True, is_staff=True)
    names = lambda qs: sorted(p.name for p in qs)  # noqa: E731
    # A manager's managed projects are those where *they* manage (not where someone else does).
    assert names(projects_for_user(user=manager, role=Membership.ROLE_MANAGER)) == ["Mine"]
    assert names(projects_for_user(user=manager, role=Membership.ROLE_RATER)) == ["Theirs"]
    assert names(projects_for_user(user=rater, role=Membership.ROLE_MANAGER)) == []
    assert names(projects_for_user(user=rater, role=Membership.ROLE_RATER)) == ["Mine"]
    assert names(projects_for_user(user=admin, role=Membership.ROLE_MANAGER)) == ["Mine", "Theirs"]
    assert (project_role(project_id=mine.pk, user=manager), project_role(project_id=theirs.pk, user=manager)) == (
        "manager", "rater")
    assert project_role(project_id=mine.pk, user=rater) == "rater"
    assert project_role(project_id=theirs.pk, user=rater) is None
    assert project_role(project_id=theirs.pk, user=admin) == "manager"


def _holding(project) -> dict[int, int]:
    return dict(
        Pair.objects.filter(project=project)
        .annotate(n=Count("assignments", filter=Q(assignments__holds_slot=True)))
        .values_list("id", "n")
    )


def test_counters_stay_equal_to_rows_with_gold_pairs(impl):
    """lease_count and judgment_count count their rows for gold pairs too (only capacity differs)."""
    project = ProjectFactory(overlap=1)
    _gold_pairs(project, 2)
    make_pairs(project, 2)
    raters = [make_rater(project) for _ in range(6)]
    for i, rater in enumerate(raters):
        lease = assignment_next(project=project, rater=rater, gold=i < 4)
        if i != 3:  # one gold lease stays live
            _submit(lease)
    holding = _holding(project)
    for pair in Pair.objects.filter(project=project).annotate(n=Count("judgments")):
        assert pair.judgment_count == pair.n and pair.lease_count == holding[pair.pk]
        if not pair.is_gold:
            assert pair.judgment_count + pair.lease_count <= project.overlap
    gold = Pair.objects.filter(project=project, is_gold=True).order_by("judgment_count")
    assert [(p.judgment_count, p.lease_count) for p in gold] == [(1, 1), (2, 0)]  # over the overlap of 1
