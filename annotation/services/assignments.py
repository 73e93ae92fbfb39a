"""The assignment engine: leasing pairs to raters, and skips.

A lease is an Assignment with ``holds_slot=True``: it occupies one of the pair's ``overlap``
slots, counted on the pair row (``Pair.lease_count``) next to ``Pair.judgment_count``. A pair
is open while ``judgment_count + lease_count < overlap``. Keeping both counters on the pair row
is what makes the engine safe under concurrency: the row is locked when leased or judged, and
PostgreSQL re-checks a locked row's own columns (never another table's) before it hands it over.

Expired leases are reclaimed lazily, by the next call to ``assignment_next`` in the project:
their ``holds_slot`` is cleared and the pair's ``lease_count`` lowered, so the pair returns to
the pool. The assignment itself stays "active" (a late submission may still be accepted, see
``judgment_submit``).

Gold pairs (``Pair.is_gold``, known answers, see ``annotation.services.quality``) are offered
on their own terms: with probability ``gold_rate`` a call offers the least judged gold pair this
rater has not judged or skipped, whatever its overlap (every rater may see every gold pair);
otherwise, or when no gold pair is left for them, a normal pair as above. Gold pairs are never
offered as normal pairs and are left out of the open-pair counts (progress), but a gold lease is
kept like any other (it holds the rater's one lease, expires and is reclaimed the same way), so a
gold pair's lease looks exactly like any other to the rater.

On PostgreSQL ``assignment_next`` is one SQL statement (reclaim, reuse or lease, and read
what the page shows); elsewhere (SQLite) a short transaction of ORM statements does the same.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, ProgrammingError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.models import (
    PAIR_SHUFFLE_MODULUS,
    PAIR_SHUFFLE_MULTIPLIER,
    Assignment,
    Membership,
    Pair,
    Project,
)
from annotation.selectors.assignments import (
    PreparedStatement,
    open_pairs_count,
    prepared_statement_lost,
    rater_progress,
)

T = TypeVar("T")

#: Set to False (tests do) to run the portable ORM path on PostgreSQL too.
USE_POSTGRES_STATEMENTS = True


class RaterActionError(Exception):
    """A rater's request that the rules refuse. ``code`` is stable; the message is for people."""

    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AssignmentClosed(RaterActionError):
    """The assignment was already judged or skipped, so it cannot be skipped or judged."""

    code = "assignment_closed"


class SkipReasonInvalid(RaterActionError):
    code = "invalid_reason"


@dataclass(frozen=True)
class LeasedVideo:
    public_id: UUID
    has_poster: bool
    fps: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Lease:
    """What the rater page needs to show one leased pair (never generator names)."""

    assignment_id: int
    pair_id: int
    left_is_a: bool
    expires_at: datetime
    prompt_text: str
    left: LeasedVideo
    right: LeasedVideo
    judged: int
    available: int
    #: The two videos of the pair this rater would most likely get next (not leased): the page
    #: may start loading them early. None when there is no other open pair.
    prefetch: tuple[LeasedVideo, LeasedVideo] | None
    #: True when this is the rater's existing, still valid lease (a reload).
    resumed: bool


def _pg_retryable(exc: Exception) -> bool:
    cause = getattr(exc, "__cause__", None)
    code = getattr(cause, "pgcode", None)
    if code in ("40P01", "40001") or prepared_statement_lost(exc):  # deadlock, serialization failure
        return True
    # A second lease for the same rater raced us (two tabs): the retry finds the first one.
    return isinstance(exc, IntegrityError) and "assignment_one_lease_per_rater" in str(exc)


def _sqlite_retryable(exc: Exception) -> bool:
    return isinstance(exc, OperationalError) and "locked" in str(exc)


def _retrying(fn: Callable[[], T], attempts: int = 4) -> T:
    """Run ``fn`` (one statement or one transaction), retrying races the database reported."""
    for attempt in range(attempts):
        try:
            if connection.in_atomic_block:
                # Inside a caller's transaction a failed statement must not poison it: savepoint.
                with transaction.atomic():
                    return fn()
            return fn()
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            if attempt + 1 < attempts and (_pg_retryable(exc) or _sqlite_retryable(exc)):
                continue
            raise
    raise AssertionError("unreachable")


def _fast_path() -> bool:
    return USE_POSTGRES_STATEMENTS and connection.vendor == "postgresql"


# --- assignment_next ------------------------------------------------------------------------

# One statement: check membership; reclaim the project's expired leases (their pairs are offered
# from the next statement on: one statement cannot lock a row it also updates); keep the rater's
# live lease if any; else lock (SKIP LOCKED) the best open pair, lease it (an upsert: the
# rater's own lapsed assignment of that pair is renewed) and count it on the pair; read back
# what the page shows, the next best pair (unlocked) as a prefetch hint, and the progress.
# "Best" is (judgment_count + lease_count) DESC then the shuffle hash, exactly the expression
# of the index pair_assignment_order, so the scan stops after a few rows at any table size.
_NEXT_SQL_TEMPLATE = f"""
WITH member AS (
    SELECT 1 FROM annotation_membership
    WHERE project_id = %(project)s AND user_id = %(rater)s AND role = 'rater' AND NOT paused
), expired AS (
    UPDATE annotation_assignment SET holds_slot = FALSE
    WHERE project_id = %(project)s AND holds_slot AND expires_at <= %(now)s
    RETURNING pair_id
), released AS (
    UPDATE annotation_pair AS p SET lease_count = p.lease_count - e.n
    FROM (SELECT pair_id, count(*) AS n FROM expired GROUP BY pair_id) AS e
    WHERE p.id = e.pair_id
    RETURNING p.id
), mine AS (
    SELECT id, pair_id, left_is_a, expires_at FROM annotation_assignment
    WHERE rater_id = %(rater)s AND project_id = %(project)s AND holds_slot AND expires_at > %(now)s
      AND EXISTS (SELECT 1 FROM member)
), gold_pick AS (
    -- Drawn in Python (gold): the least judged gold pair this rater has not judged or skipped,
    -- whatever its overlap. The same index as below, read backwards over the gold range.
    SELECT p.id
    FROM annotation_pair AS p
    WHERE %(gold)s
      AND p.project_id = %(project)s AND p.is_gold
      AND EXISTS (SELECT 1 FROM member)
      AND NOT EXISTS (SELECT 1 FROM mine)
      AND NOT EXISTS (
          SELECT 1 FROM annotation_assignment AS s
          WHERE s.pair_id = p.id AND s.rater_id = %(rater)s AND (s.status <> 'active' OR s.holds_slot))
      AND p.id NOT IN (SELECT pair_id FROM expired)
    ORDER BY p.judgment_count + p.lease_count ASC, (p.id * {PAIR_SHUFFLE_MULTIPLIER}) %% {PAIR_SHUFFLE_MODULUS} DESC
    LIMIT 1
    FOR UPDATE OF p {{lock_wait}}
), pick AS (
    SELECT p.id
    FROM annotation_pair AS p
    WHERE p.project_id = %(project)s AND NOT p.is_gold
      AND p.judgment_count + p.lease_count < %(overlap)s
      AND EXISTS (SELECT 1 FROM member)
      AND NOT EXISTS (SELECT 1 FROM mine)
      AND NOT EXISTS (SELECT 1 FROM gold_pick)
      AND NOT EXISTS (
          SELECT 1 FROM annotation_assignment AS s
          WHERE s.pair_id = p.id AND s.rater_id = %(rater)s AND (s.status <> 'active' OR s.holds_slot))
      AND p.id NOT IN (SELECT pair_id FROM expired)
    ORDER BY p.judgment_count + p.lease_count DESC, (p.id * {PAIR_SHUFFLE_MULTIPLIER}) %% {PAIR_SHUFFLE_MODULUS}
    LIMIT 1
    FOR UPDATE OF p {{lock_wait}}
), ins AS (
    INSERT INTO annotation_assignment
        (project_id, pair_id, rater_id, left_is_a, status, leased_at, expires_at,
         skip_reason, skip_note, holds_slot)
    SELECT %(project)s, id, %(rater)s, %(left_is_a)s, 'active', %(now)s, %(expires)s, '', '', TRUE
    FROM (SELECT id FROM gold_pick UNION ALL SELECT id FROM pick) AS picked
    ON CONFLICT (pair_id, rater_id) DO UPDATE
        SET leased_at = EXCLUDED.leased_at, expires_at = EXCLUDED.expires_at, holds_slot = TRUE
        WHERE annotation_assignment.status = 'active' AND NOT annotation_assignment.holds_slot
    RETURNING id, pair_id, left_is_a, expires_at
), bump AS (
    UPDATE annotation_pair AS p SET lease_count = p.lease_count + 1
    FROM ins WHERE p.id = ins.pair_id
    RETURNING p.id
), chosen AS (
    SELECT id, pair_id, left_is_a, expires_at, TRUE AS resumed FROM mine
    UNION ALL
    SELECT id, pair_id, left_is_a, expires_at, FALSE FROM ins
), hint AS (
    -- The next best pair after the chosen one, read without a lock: only a hint to prefetch.
    SELECT p.id FROM annotation_pair AS p
    WHERE p.project_id = %(project)s AND NOT p.is_gold
      AND p.judgment_count + p.lease_count < %(overlap)s
      AND EXISTS (SELECT 1 FROM member)
      AND p.id NOT IN (SELECT pair_id FROM chosen)
      AND NOT EXISTS (
          SELECT 1 FROM annotation_assignment AS s
          WHERE s.pair_id = p.id AND s.rater_id = %(rater)s AND (s.status <> 'active' OR s.holds_slot))
    ORDER BY p.judgment_count + p.lease_count DESC, (p.id * {PAIR_SHUFFLE_MULTIPLIER}) %% {PAIR_SHUFFLE_MODULUS}
    LIMIT 1
)
SELECT c.id, c.pair_id, c.left_is_a, c.expires_at, c.resumed, pr.text,
       va.public_id, va.poster <> '', va.fps, va.duration,
       vb.public_id, vb.poster <> '', vb.fps, vb.duration,
       hva.public_id, hva.poster <> '', hvb.public_id, hvb.poster <> '',
       (SELECT count(*) FROM annotation_assignment AS j
        WHERE j.rater_id = %(rater)s AND j.project_id = %(project)s AND j.status = 'judged'),
       (SELECT count(*) FROM annotation_assignment AS s JOIN annotation_pair AS sp ON sp.id = s.pair_id
        WHERE s.rater_id = %(rater)s AND s.project_id = %(project)s AND s.status IN ('judged', 'skipped')
          AND sp.judgment_count < %(overlap)s AND NOT sp.is_gold),
       (SELECT count(*) FROM bump),
       (SELECT count(*) FROM expired)
FROM (SELECT 1) AS one
LEFT JOIN chosen AS c ON TRUE
LEFT JOIN annotation_pair AS p ON p.id = c.pair_id
LEFT JOIN annotation_prompt AS pr ON pr.id = p.prompt_id
LEFT JOIN annotation_video AS va ON va.id = p.video_a_id
LEFT JOIN annotation_video AS vb ON vb.id = p.video_b_id
LEFT JOIN hint AS h ON TRUE
LEFT JOIN annotation_pair AS hp ON hp.id = h.id
LEFT JOIN annotation_video AS hva ON hva.id = hp.video_a_id
LEFT JOIN annotation_video AS hvb ON hvb.id = hp.video_b_id
"""
_NEXT_SQL = _NEXT_SQL_TEMPLATE.format(lock_wait="SKIP LOCKED")
# The same, waiting for locked pairs instead of passing them by: used only when the first form
# found nothing, so that a pair locked for a millisecond by another rater's call does not show
# "no more pairs" to this one. PostgreSQL re-checks each locked row's counters after the wait.
_NEXT_SQL_WAITING = _NEXT_SQL_TEMPLATE.format(lock_wait="")
_NEXT_TYPES = {
    "project": "bigint",
    "rater": "bigint",
    "now": "timestamptz",
    "expires": "timestamptz",
    "overlap": "integer",
    "left_is_a": "boolean",
    "gold": "boolean",
}
_NEXT = PreparedStatement("vj_next", _NEXT_SQL, _NEXT_TYPES)
_NEXT_WAITING = PreparedStatement("vj_next_waiting", _NEXT_SQL_WAITING, _NEXT_TYPES)


def _side(video_a: LeasedVideo, video_b: LeasedVideo, left_is_a: bool) -> tuple[LeasedVideo, LeasedVideo]:
    return (video_a, video_b) if left_is_a else (video_b, video_a)


def _available(*, project: Project, judged: int, seen_open: int) -> int:
    # Open normal pairs the rater has not judged or skipped, plus everything they judged (gold
    # pairs included): the progress bar's whole. The open-pair count is cached for a few
    # seconds (a count over all pairs is the one thing here that does not use an index range of
    # a few rows).
    return judged + max(0, open_pairs_count(project=project) - seen_open)


def gold_draw(*, project: Project) -> bool:
    """Whether this call offers a gold pair: True with probability ``project.gold_rate``."""
    rate = float(getattr(project, "gold_rate", 0.0) or 0.0)
    return rate > 0 and random.random() < rate  # a sampling rate, not a secret


def _next_postgresql(*, project: Project, rater: AbstractBaseUser, now: datetime, gold: bool) -> Lease | None:
    params = {
        "project": project.pk,
        "rater": rater.pk,
        "now": now,
        "expires": now + timedelta(seconds=project.lease_seconds),
        "overlap": project.overlap,
        "left_is_a": secrets.randbelow(2) == 0,
        "gold": gold,
    }

    def run(statement: PreparedStatement = _NEXT):
        with connection.cursor() as cursor:
            statement.execute(cursor, params)
            return cursor.fetchone()

    row = _retrying(run)
    if row[0] is None and row[-1]:
        # This call reclaimed expired leases, and the statement cannot offer in the same breath
        # a pair whose row it just updated: ask once more, now that they are back in the pool.
        row = _retrying(run)
    if row[0] is None:
        row = _retrying(lambda: run(_NEXT_WAITING))
    (assignment_id, pair_id, left_is_a, expires_at, resumed, prompt_text,
     a_id, a_poster, a_fps, a_dur, b_id, b_poster, b_fps, b_dur,
     ha_id, ha_poster, hb_id, hb_poster, judged, seen_open, _bumped, _reclaimed) = row  # fmt: skip
    if assignment_id is None:
        return None
    left, right = _side(LeasedVideo(a_id, a_poster, a_fps, a_dur), LeasedVideo(b_id, b_poster, b_fps, b_dur), left_is_a)
    prefetch = (LeasedVideo(ha_id, ha_poster), LeasedVideo(hb_id, hb_poster)) if ha_id is not None else None
    return Lease(
        assignment_id=assignment_id,
        pair_id=pair_id,
        left_is_a=left_is_a,
        expires_at=expires_at,
        prompt_text=prompt_text,
        left=left,
        right=right,
        judged=judged,
        available=_available(project=project, judged=judged, seen_open=seen_open),
        prefetch=prefetch,
        resumed=resumed,
    )


def _unseen_by(rater: AbstractBaseUser) -> Exists:
    # The rater has not judged, skipped or leased the pair (a lapsed lease of theirs may be renewed).
    seen = Assignment.objects.filter(pair=OuterRef("pk"), rater_id=rater.pk).filter(
        ~Q(status=Assignment.STATUS_ACTIVE) | Q(holds_slot=True)
    )
    return ~Exists(seen)


def _gold_pairs_for(*, project: Project, rater: AbstractBaseUser):
    """Gold pairs this rater could be leased, least judged first (the SQL's ``gold_pick``)."""
    return (
        Pair.objects.filter(project_id=project.pk, is_gold=True)
        .alias(
            filled=F("judgment_count") + F("lease_count"),
            shuffle=(F("id") * PAIR_SHUFFLE_MULTIPLIER) % PAIR_SHUFFLE_MODULUS,
        )
        .filter(_unseen_by(rater))
        .order_by("filled", "-shuffle")
    )


def _open_pairs_for(*, project: Project, rater: AbstractBaseUser):
    """Normal pairs this rater could be leased, best first (the ORM form of the SQL's ``pick``)."""
    return (
        Pair.objects.filter(project_id=project.pk, is_gold=False)
        .alias(
            filled=F("judgment_count") + F("lease_count"),
            shuffle=(F("id") * PAIR_SHUFFLE_MULTIPLIER) % PAIR_SHUFFLE_MODULUS,
        )
        .filter(filled__lt=project.overlap)
        .filter(_unseen_by(rater))
        .order_by("-filled", "shuffle")
    )


def _leased_video(video) -> LeasedVideo:
    return LeasedVideo(video.public_id, bool(video.poster), video.fps, video.duration)


def _next_portable(*, project: Project, rater: AbstractBaseUser, now: datetime, gold: bool) -> Lease | None:
    with transaction.atomic():
        # A write first: on SQLite it takes the database's write lock at once (a read that later
        # writes may fail to upgrade); on PostgreSQL it locks the rater's membership row, so one
        # rater's concurrent calls queue. It doubles as the membership check.
        if not Membership.objects.filter(
            project_id=project.pk, user_id=rater.pk, role=Membership.ROLE_RATER, paused=False
        ).update(paused=False):
            return None
        expired = list(
            Assignment.objects.select_for_update()
            .filter(project_id=project.pk, holds_slot=True, expires_at__lte=now)
            .values_list("id", "pair_id")
        )
        if expired:
            Assignment.objects.filter(id__in=[pk for pk, _ in expired]).update(holds_slot=False)
            for pair_id, n in Counter(pair_id for _, pair_id in expired).items():
                Pair.objects.filter(pk=pair_id).update(lease_count=F("lease_count") - n)
        mine = Assignment.objects.filter(
            rater_id=rater.pk, project_id=project.pk, holds_slot=True, expires_at__gt=now
        ).first()
        open_pairs = _open_pairs_for(project=project, rater=rater).values_list("id", flat=True)
        candidates = list(open_pairs.select_for_update(skip_locked=True, of=("self",))[:2])
        if not candidates:
            # Pairs locked by other raters' calls for a moment are not "nothing left": wait for them.
            candidates = list(open_pairs.select_for_update(of=("self",))[:2])
        gold_candidates = []
        if gold and mine is None:
            gold_pairs = _gold_pairs_for(project=project, rater=rater).values_list("id", flat=True)
            gold_candidates = list(gold_pairs.select_for_update(skip_locked=True, of=("self",))[:1])
        assignment = mine
        if assignment is None:
            for pair_id, is_gold in [*((g, True) for g in gold_candidates), *((c, False) for c in candidates)]:
                # The guard re-checks capacity under the row lock (the lock is taken above on
                # PostgreSQL; SQLite holds the whole database). Gold pairs have no capacity.
                guard = Pair.objects.filter(pk=pair_id)
                if not is_gold:
                    guard = guard.alias(filled=F("judgment_count") + F("lease_count")).filter(
                        filled__lt=project.overlap
                    )
                taken = guard.update(lease_count=F("lease_count") + 1)
                if not taken:
                    continue
                assignment = Assignment.objects.filter(pair_id=pair_id, rater_id=rater.pk).first()
                expires_at = now + timedelta(seconds=project.lease_seconds)
                if assignment is None:
                    assignment = Assignment.objects.create(
                        project_id=project.pk,
                        pair_id=pair_id,
                        rater_id=rater.pk,
                        left_is_a=secrets.randbelow(2) == 0,
                        leased_at=now,
                        expires_at=expires_at,
                        holds_slot=True,
                    )
                else:
                    # The rater's own lapsed lease of this pair: renewed, sides unchanged (a page
                    # still open on the old lease must keep meaning the same thing).
                    assignment.leased_at, assignment.expires_at, assignment.holds_slot = now, expires_at, True
                    assignment.save(update_fields=["leased_at", "expires_at", "holds_slot"])
                break
        if assignment is None:
            return None
        pair = Pair.objects.select_related("prompt", "video_a", "video_b").get(pk=assignment.pair_id)
        hint_id = next((pk for pk in candidates if pk != assignment.pair_id), None)
        prefetch = None
        if hint_id is not None:
            hint = Pair.objects.select_related("video_a", "video_b").get(pk=hint_id)
            prefetch = (_leased_video(hint.video_a), _leased_video(hint.video_b))
        judged, seen_open = rater_progress(project=project, rater=rater)
    left, right = _side(_leased_video(pair.video_a), _leased_video(pair.video_b), assignment.left_is_a)
    return Lease(
        assignment_id=assignment.pk,
        pair_id=pair.pk,
        left_is_a=assignment.left_is_a,
        expires_at=assignment.expires_at,
        prompt_text=pair.prompt.text,
        left=left,
        right=right,
        judged=judged,
        available=_available(project=project, judged=judged, seen_open=seen_open),
        prefetch=prefetch,
        resumed=assignment is mine,
    )


def assignment_next(
    *, project: Project, rater: AbstractBaseUser, now: datetime | None = None, gold: bool | None = None
) -> Lease | None:
    """Lease ``rater`` the next pair of ``project``, or give back the lease they still hold.

    Returns None when nothing is left for them, and for a paused rater or a non-member (only
    members with the rater role are leased pairs). ``project`` needs ``overlap``,
    ``lease_seconds`` and ``gold_rate`` loaded. Never holds two leases for one rater in one
    project. ``gold``: offer a gold pair first (None: drawn with probability ``gold_rate``);
    when none is left for the rater, a normal pair is offered.
    """
    now = now or timezone.now()
    gold = gold_draw(project=project) if gold is None else gold
    if _fast_path():
        return _next_postgresql(project=project, rater=rater, now=now, gold=gold)
    return _retrying(lambda: _next_portable(project=project, rater=rater, now=now, gold=gold))


def assignment_release(*, project_id: int, rater_id: int) -> int:
    """Give back the rater's live lease in the project (when they are paused), so that its pair
    returns to the pool at once instead of at expiry. Returns how many were released (0 or 1).

    The assignment stays active: a submission already on its way is then treated like one of an
    expired, reclaimed lease (accepted while the pair has room, see ``judgment_submit``).
    """

    def run() -> int:
        with transaction.atomic():
            held = list(
                Assignment.objects.select_for_update()
                .filter(project_id=project_id, rater_id=rater_id, holds_slot=True)
                .values_list("id", "pair_id")
            )
            if held:
                Assignment.objects.filter(id__in=[pk for pk, _ in held]).update(holds_slot=False)
                for pair_id, n in Counter(pair_id for _, pair_id in held).items():
                    Pair.objects.filter(pk=pair_id).update(lease_count=F("lease_count") - n)
            return len(held)

    return _retrying(run)


# --- assignment_skip ------------------------------------------------------------------------

SKIP_REASON_VALUES = frozenset(value for value, _label in Assignment.SKIP_REASONS)


def assignment_skip(*, assignment: Assignment, reason: str, note: str = "", now: datetime | None = None) -> Assignment:
    """Record that the rater skips this pair, with a reason; the pair is never offered to them again.

    Idempotent: skipping a skipped assignment changes nothing. A judged one raises
    AssignmentClosed. A skip after the lease expired is still recorded (it frees nothing).
    """
    if reason not in SKIP_REASON_VALUES:
        raise SkipReasonInvalid(f"reason must be one of {', '.join(sorted(SKIP_REASON_VALUES))}; got {reason!r}")
    now = now or timezone.now()

    def run() -> Assignment:
        with transaction.atomic():
            current = Assignment.objects.select_for_update().get(pk=assignment.pk)
            if current.status == Assignment.STATUS_JUDGED:
                raise AssignmentClosed("this pair is already judged; it cannot be skipped")
            if current.status == Assignment.STATUS_SKIPPED:
                return current
            held = current.holds_slot
            current.status = Assignment.STATUS_SKIPPED
            current.skip_reason = reason
            current.skip_note = note[:2000]
            current.finished_at = now
            current.holds_slot = False
            current.save(update_fields=["status", "skip_reason", "skip_note", "finished_at", "holds_slot"])
            if held:
                Pair.objects.filter(pk=current.pair_id).update(lease_count=F("lease_count") - 1)
            return current

    return _retrying(run)
