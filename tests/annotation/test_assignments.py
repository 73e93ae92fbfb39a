"""The assignment engine: leases, overlap, expiry, reload, order, skips; also under real concurrency.

Every rule runs against both implementations: the single PostgreSQL statement and the portable
ORM transaction (what SQLite runs), selected with the ``impl`` fixture.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.models import Assignment, Judgment, Membership, Pair
from annotation.services import assignments as assignments_service
from annotation.services.assignments import AssignmentClosed, SkipReasonInvalid, assignment_next, assignment_skip
from annotation.services.judgments import judgment_submit
from tests.factories import (
    ALL_LEFT,
    GeneratorFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    assignment_invariants_check,
    in_threads,
    make_pairs,
    make_rater,
)

pytestmark = pytest.mark.django_db


def _judge(lease, rater, project, answers=ALL_LEFT, now=None):
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    assert assignment.rater_id == rater.pk
    return judgment_submit(assignment=assignment, answers=answers, now=now)


def test_lease_records_rater_side_and_expiry(impl):
    project = ProjectFactory(lease_seconds=600)
    pair = make_pairs(project, 1)[0]
    rater = make_rater(project)
    now = timezone.now()
    lease = assignment_next(project=project, rater=rater, now=now)
    assert lease is not None and lease.pair_id == pair.pk and not lease.resumed
    assignment = Assignment.objects.get(pk=lease.assignment_id)
    assert (assignment.rater_id, assignment.status, assignment.holds_slot) == (rater.pk, "active", True)
    assert assignment.expires_at == now + timedelta(seconds=600)
    assert assignment.left_is_a == lease.left_is_a
    left, right = (pair.video_a, pair.video_b) if lease.left_is_a else (pair.video_b, pair.video_a)
    assert (lease.left.public_id, lease.right.public_id) == (left.public_id, right.public_id)
    assert lease.prompt_text == pair.prompt.text
    pair.refresh_from_db()
    assert (pair.lease_count, pair.judgment_count) == (1, 0)


def test_reload_gives_the_same_lease_back(impl):
    project = ProjectFactory()
    make_pairs(project, 3)
    rater = make_rater(project)
    first = assignment_next(project=project, rater=rater)
    again = assignment_next(project=project, rater=rater)
    assert again.assignment_id == first.assignment_id and again.resumed
    assert (again.left, again.right, again.expires_at) == (first.left, first.right, first.expires_at)
    assert Assignment.objects.filter(rater=rater).count() == 1
    assignment_invariants_check(project)


def test_paused_rater_non_member_and_manager_get_nothing(impl):
    project = ProjectFactory()
    make_pairs(project, 2)
    paused = make_rater(project, paused=True)
    outsider = UserFactory()
    manager = MembershipFactory(project=project, role=Membership.ROLE_MANAGER).user
    other_project_rater = make_rater(ProjectFactory())
    for user in (paused, outsider, manager, other_project_rater):
        assert assignment_next(project=project, rater=user) is None
    assert not Assignment.objects.exists()


def test_overlap_counts_judgments_and_live_leases(impl):
    project = ProjectFactory(overlap=2)
    make_pairs(project, 1)
    r1, r2, r3 = (make_rater(project) for _ in range(3))
    lease1 = assignment_next(project=project, rater=r1)
    assert assignment_next(project=project, rater=r2) is not None
    assert assignment_next(project=project, rater=r3) is None  # 0 judgments + 2 leases
    _judge(lease1, r1, project)
    assert assignment_next(project=project, rater=r3) is None  # 1 judgment + 1 lease
    assignment_invariants_check(project)


def test_expired_lease_returns_the_pair_to_the_pool(impl):
    project = ProjectFactory(overlap=1, lease_seconds=60)
    pair = make_pairs(project, 1)[0]
    r1, r2 = make_rater(project), make_rater(project)
    now = timezone.now()
    lease1 = assignment_next(project=project, rater=r1, now=now)
    assert assignment_next(project=project, rater=r2, now=now + timedelta(seconds=59)) is None
    lease2 = assignment_next(project=project, rater=r2, now=now + timedelta(seconds=61))
    assert lease2 is not None and lease2.pair_id == pair.pk
    old = Assignment.objects.get(pk=lease1.assignment_id)
    assert (old.status, old.holds_slot) == ("active", False)  # lapsed, kept for a late submission
    pair.refresh_from_db()
    assert pair.lease_count == 1
    assignment_invariants_check(project)


def test_own_lapsed_lease_is_renewed_with_the_same_sides(impl):
    project = ProjectFactory(lease_seconds=60)
    make_pairs(project, 1)
    rater = make_rater(project)
    now = timezone.now()
    first = assignment_next(project=project, rater=rater, now=now)
    # After expiry the pair went back to the pool; the rater may get it again: the same
    # assignment, renewed, with its sides unchanged (a page still open on it keeps its meaning).
    renewed = assignment_next(project=project, rater=rater, now=now + timedelta(seconds=61))
    assert renewed.assignment_id == first.assignment_id and renewed.left_is_a == first.left_is_a
    assert renewed.expires_at == now + timedelta(seconds=121) and not renewed.resumed
    assert Assignment.objects.get(pk=first.assignment_id).holds_slot
    assignment_invariants_check(project)


def test_closest_to_completion_first(impl):
    project = ProjectFactory(overlap=3)
    fresh, one, two = make_pairs(project, 3)
    Pair.objects.filter(pk=one.pk).update(judgment_count=1)
    Pair.objects.filter(pk=two.pk).update(judgment_count=2)
    order = []
    for _ in range(3):
        rater = make_rater(project)
        order.append(assignment_next(project=project, rater=rater).pair_id)
    # The pair with two judgments first; then one judgment + one lease (the same pair: 1+1 < 3)
    # before the pair with one judgment, and only then the fresh one.
    assert order == [two.pk, one.pk, one.pk]
    assert assignment_next(project=project, rater=make_rater(project)).pair_id == fresh.pk


def test_finishes_pairs_before_opening_new_ones(impl):
    project = ProjectFactory(overlap=3)
    make_pairs(project, 10)
    raters = [make_rater(project) for _ in range(6)]
    leased = [assignment_next(project=project, rater=r).pair_id for r in raters]
    # Six raters fill two pairs completely rather than spreading over six.
    assert len(set(leased)) == 2 and all(leased.count(p) == 3 for p in set(leased))


def test_random_among_equals_and_random_sides(impl):
    project = ProjectFactory(overlap=1)
    pairs = make_pairs(project, 24)
    rater = make_rater(project)
    got, sides = [], set()
    for _ in range(24):
        lease = assignment_next(project=project, rater=rater)
        got.append(lease.pair_id)
        sides.add(lease.left_is_a)
        _judge(lease, rater, project)
    assert sorted(got) == sorted(p.pk for p in pairs)
    assert got != sorted(got) and got != sorted(got, reverse=True)  # not import order
    assert sides == {True, False}
    assert assignment_next(project=project, rater=rater) is None
    assignment_invariants_check(project)


def test_judged_or_skipped_pairs_are_never_offered_again(impl):
    project = ProjectFactory(overlap=3)
    p1, p2 = make_pairs(project, 2)
    rater = make_rater(project)
    first = assignment_next(project=project, rater=rater)
    _judge(first, rater, project)
    second = assignment_next(project=project, rater=rater)
    assert second.pair_id != first.pair_id
    assignment_skip(
        assignment=Assignment.objects.get(pk=second.assignment_id), reason="video_broken", note="black frames"
    )
    assert assignment_next(project=project, rater=rater) is None
    skipped = Assignment.objects.get(pk=second.assignment_id)
    assert (skipped.status, skipped.skip_reason, skipped.skip_note, skipped.holds_slot) == (
        "skipped",
        "video_broken",
        "black frames",
        False,
    )
    assert Pair.objects.get(pk=second.pair_id).lease_count == 0  # the slot went back
    # ... while other raters still get both pairs.
    other = make_rater(project)
    assert assignment_next(project=project, rater=other) is not None
    assignment_invariants_check(project)


def test_skip_rules(impl):
    project = ProjectFactory()
    make_pairs(project, 2)
    rater = make_rater(project)
    lease = assignment_next(project=project, rater=rater)
    assignment = Assignment.objects.get(pk=lease.assignment_id)
    with pytest.raises(SkipReasonInvalid):
        assignment_skip(assignment=assignment, reason="boring")
    assignment_skip(assignment=assignment, reason="cannot_judge")
    again = assignment_skip(assignment=assignment, reason="inappropriate")  # idempotent: first reason kept
    assert again.skip_reason == "cannot_judge"
    judged = assignment_next(project=project, rater=rater)
    _judge(judged, rater, project)
    with pytest.raises(AssignmentClosed):
        assignment_skip(assignment=Assignment.objects.get(pk=judged.assignment_id), reason="cannot_judge")
    assignment_invariants_check(project)


def test_skip_after_expiry_is_recorded_and_frees_nothing(impl):
    project = ProjectFactory(overlap=1, lease_seconds=60)
    make_pairs(project, 1)
    r1, r2 = make_rater(project), make_rater(project)
    now = timezone.now()
    lease1 = assignment_next(project=project, rater=r1, now=now)
    assignment_next(project=project, rater=r2, now=now + timedelta(seconds=61))  # reclaims, leases to r2
    assignment_skip(assignment=Assignment.objects.get(pk=lease1.assignment_id), reason="cannot_judge")
    assignment_invariants_check(project)


def test_prefetch_hint_names_another_open_pair(impl):
    project = ProjectFactory(overlap=1)
    p1, p2 = make_pairs(project, 2)
    rater = make_rater(project)
    lease = assignment_next(project=project, rater=rater)
    other = p2 if lease.pair_id == p1.pk else p1
    assert {v.public_id for v in lease.prefetch} == {other.video_a.public_id, other.video_b.public_id}
    # The hint is not leased: another rater can take it.
    assert assignment_next(project=project, rater=make_rater(project)).pair_id == other.pk
    assert assignment_next(project=project, rater=rater).prefetch is None  # nothing else open


def test_progress_counts_judged_and_available(impl):
    project = ProjectFactory(overlap=2)
    make_pairs(project, 4)
    rater = make_rater(project)
    lease = assignment_next(project=project, rater=rater)
    assert (lease.judged, lease.available) == (0, 4)
    _judge(lease, rater, project)
    from django.core.cache import cache

    cache.clear()
    lease = assignment_next(project=project, rater=rater)
    assert (lease.judged, lease.available) == (1, 4)
    assignment_skip(assignment=Assignment.objects.get(pk=lease.assignment_id), reason="cannot_judge")
    cache.clear()
    lease = assignment_next(project=project, rater=rater)
    assert (lease.judged, lease.available) == (1, 3)


def test_one_live_lease_per_rater_is_a_database_constraint():
    project = ProjectFactory()
    p1, p2 = make_pairs(project, 2)
    rater = make_rater(project)
    now = timezone.now()
    fields = dict(project=project, rater=rater, left_is_a=True, leased_at=now, expires_at=now, holds_slot=True)
    Assignment.objects.create(pair=p1, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(pair=p2, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():  # only an active assignment holds a slot
        Assignment.objects.filter(pair=p1).update(status="judged")


# --- scale --------------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan")
def test_next_stays_an_index_scan_at_100k_pairs():
    """100,000 pairs: the lease statement reads a handful of index entries, not the table."""
    project = ProjectFactory(overlap=3)
    gens = [GeneratorFactory(project=project) for _ in range(10)]
    gen_ids = [g.pk for g in gens]
    prompts = 2223  # 10 generators: 45 pairs per prompt -> 100,035 pairs
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_prompt (project_id, external_id, text, tags)
               SELECT %s, 'bulk-' || g, 'prompt ' || g, '{}' FROM generate_series(1, %s) AS g""",
            [project.pk, prompts],
        )
        cursor.execute(
            """INSERT INTO annotation_video (public_id, project_id, prompt_id, generator_id, source, original,
                   browser, poster, sha256, codec, pix_fmt, transcoded, status, error, created_at, updated_at)
               SELECT md5(pr.id::text || '-' || gen)::uuid, %s, pr.id, gen, 'x', '', 'v.mp4', '', '', '', '',
                      false, 'ready', '', now(), now()
               FROM annotation_prompt pr CROSS JOIN unnest(%s::bigint[]) AS gen WHERE pr.project_id = %s""",
            [project.pk, gen_ids, project.pk],
        )
        cursor.execute(
            """INSERT INTO annotation_pair (project_id, prompt_id, generator_a_id, generator_b_id, video_a_id,
                   video_b_id, is_gold, gold_answers, judgment_count, lease_count, created_at)
               SELECT %s, va.prompt_id, va.generator_id, vb.generator_id, va.id, vb.id, false, '{}',
                      (va.id %% 3)::int, 0, now()
               FROM annotation_video va JOIN annotation_video vb
                 ON vb.prompt_id = va.prompt_id AND va.generator_id < vb.generator_id
               WHERE va.project_id = %s""",
            [project.pk, project.pk],
        )
        cursor.execute("ANALYZE annotation_pair")
        cursor.execute("ANALYZE annotation_assignment")
    assert Pair.objects.filter(project=project).count() > 100_000
    # 500 gold pairs, each judged by 50 raters: without is_gold in the index they would be the
    # first 500 entries of the normal scan (fullest first).
    gold_ids = list(Pair.objects.filter(project=project).order_by("id").values_list("id", flat=True)[:500])
    Pair.objects.filter(id__in=gold_ids).update(is_gold=True, gold_answers={"final_verdict": ["a"]},
                                                judgment_count=50)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_pair")
    raters = [make_rater(project) for _ in range(20)]
    now = timezone.now()
    for gold in (False, True):
        params = {
            "project": project.pk,
            "rater": raters[0].pk,
            "now": now,
            "expires": now,
            "overlap": 3,
            "left_is_a": True,
            "gold": gold,
        }
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + assignments_service._NEXT_SQL, params)
            plan = cursor.fetchone()[0]
        text = str(plan)
        assert "pair_assignment_order" in text
        assert "Seq Scan', 'Relation Name': 'annotation_pair" not in text.replace('"', "'")
        # Each scan of the pair index (the pick, the gold pick, the prefetch hint) reads a few
        # entries, not the 100,000 pairs nor the 500 gold pairs.
        scans = [node for node in _plan_nodes(plan) if node.get("Index Name") == "pair_assignment_order"]
        assert scans, plan
        for node in scans:
            read = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            assert read * node.get("Actual Loops", 1) <= 10, (gold, node)
        if gold:
            assert any(node.get("Scan Direction") == "Backward" for node in scans), scans
    assert assignment_next(project=project, rater=raters[0], gold=False) is not None
    leased = [assignment_next(project=project, rater=rater, gold=i % 2 == 0) for i, rater in enumerate(raters[1:])]
    assert all(lease is not None for lease in leased)
    golds = {lease.pair_id for i, lease in enumerate(leased) if i % 2 == 0}
    assert golds <= set(gold_ids) and not {lease.pair_id for i, lease in enumerate(leased) if i % 2} & set(gold_ids)


def _plan_nodes(plan) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    nodes: list[dict] = []
    stack = [entry["Plan"] for entry in plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


# --- real concurrency ---------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_exceed_overlap(impl):
    project = ProjectFactory(overlap=3)
    make_pairs(project, 6)
    raters = [make_rater(project) for _ in range(12)]

    def loop(rater):
        done = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lease = assignment_next(project=project, rater=rater)
            if lease is None:
                return done
            _judge(lease, rater, project)
            done += 1
        return done

    counts = in_threads(loop, [(r,) for r in raters])
    assert sum(counts) == 6 * 3  # every slot filled exactly once
    assignment_invariants_check(project)
    assert set(Pair.objects.filter(project=project).values_list("judgment_count", flat=True)) == {3}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_one_rater_in_many_tabs_holds_one_lease(impl):
    project = ProjectFactory(overlap=3)
    make_pairs(project, 8)
    rater = make_rater(project)
    leases = in_threads(lambda: assignment_next(project=project, rater=rater), [()] * 8)
    assert len({lease.assignment_id for lease in leases}) == 1
    assert Assignment.objects.filter(rater=rater).count() == 1
    assignment_invariants_check(project)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_mix_with_expiry_keeps_every_invariant(impl):
    """Raters lease, judge, skip and abandon at once while their clocks run past lease expiry."""
    project = ProjectFactory(overlap=2, lease_seconds=60)
    make_pairs(project, 10)
    raters = [make_rater(project) for _ in range(10)]
    start = timezone.now()

    def loop(rater, seed):
        rng = random.Random(seed)
        stored = 0
        for step in range(40):
            now = start + timedelta(seconds=step * 20 + rng.randint(0, 30))
            lease = assignment_next(project=project, rater=rater, now=now)
            if lease is None:
                continue
            roll = rng.random()
            assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
            if roll < 0.6:
                later = now + timedelta(seconds=rng.choice([1, 30, 90]))  # 90: after expiry
                try:
                    judgment_submit(assignment=assignment, answers=ALL_LEFT, now=later)
                    stored += 1
                except Exception as exc:  # noqa: BLE001
                    assert getattr(exc, "code", "") == "lease_expired", exc
            elif roll < 0.75:
                assignment_skip(assignment=assignment, reason="cannot_judge", now=now)
            # else: abandoned; it expires
        return stored

    stored = in_threads(loop, [(r, i) for i, r in enumerate(raters)])
    assignment_invariants_check(project)
    assert sum(stored) == Judgment.objects.filter(project=project).count()

