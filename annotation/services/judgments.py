"""Judgment submission: a rater's answers for a leased pair, stored in canonical A/B terms.

The page speaks left/right; the database stores A/B/tie with what was shown where
(``left_is_a``), so the same judgment reads the same whichever side A was shown on.

Quality control at submission: the judgment's attention flags (``too_fast``, ``not_watched``;
rules in ``annotation.selectors.quality``) are stored with it, and a judgment of a gold pair is
followed by the rater's gold-accuracy check, which may pause them
(``annotation.services.quality.rater_gold_check``). A gold pair has no overlap limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.models import ANSWER_A, ANSWER_B, ANSWER_TIE, Assignment, Judgment, Pair, Question
from annotation.selectors.assignments import PairFacts, PreparedStatement, pair_facts
from annotation.selectors.quality import judgment_flags
from annotation.services.assignments import AssignmentClosed, RaterActionError, _fast_path, _retrying
from annotation.services.dashboard import dashboard_invalidate
from annotation.services.quality import rater_gold_check

SIDE_LEFT, SIDE_RIGHT, SIDE_TIE = "left", "right", "tie"
SIDE_VALUES = (SIDE_LEFT, SIDE_TIE, SIDE_RIGHT)
_MAX_DURATION_MS = 2**31 - 1


class AnswersInvalid(RaterActionError):
    """Some answers are missing, unknown or not allowed. ``errors`` maps question key -> why."""

    code = "invalid_answers"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Some answers are missing or invalid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AnswersDiffer(RaterActionError):
    """The assignment was already judged with other answers (a judgment is never overwritten)."""

    code = "answers_differ"


class LeaseExpired(RaterActionError):
    """The lease expired and the pair has since been filled by other raters."""

    code = "lease_expired"


class AssignmentMissing(RaterActionError):
    code = "not_found"


@dataclass(frozen=True)
class SubmitResult:
    judgment_id: int
    #: False when this exact submission had already been stored (a retry or a double click).
    created: bool


def side_to_canonical(side: str, *, left_is_a: bool) -> str:
    if side == SIDE_TIE:
        return ANSWER_TIE
    return ANSWER_A if (side == SIDE_LEFT) == left_is_a else ANSWER_B


def canonical_to_side(answer: str, *, left_is_a: bool) -> str:
    if answer == ANSWER_TIE:
        return SIDE_TIE
    return SIDE_LEFT if (answer == ANSWER_A) == left_is_a else SIDE_RIGHT


def question_choices(question: Question, *, left_is_a: bool) -> list[str]:
    """The question's allowed answers as the page offers them, in Left, Tie, Right order."""
    offered = {canonical_to_side(answer, left_is_a=left_is_a) for answer in question.allowed}
    return [side for side in SIDE_VALUES if side in offered]


def answers_canonical(*, answers: Mapping[str, Any], questions: Sequence[Question], left_is_a: bool) -> dict[str, str]:
    """Check page answers ({key: left|right|tie}) against the rubric; return them as A/B/tie.

    Raises AnswersInvalid naming every unknown key, unanswered required question and bad value.
    """
    by_key = {q.key: q for q in questions}
    errors: dict[str, str] = {}
    for key in answers:
        if key not in by_key:
            errors[str(key)] = "unknown question"
    canonical: dict[str, str] = {}
    for question in questions:
        value = answers.get(question.key)
        if value is None or value == "":
            if question.required:
                errors[question.key] = "required question not answered"
            continue
        if value not in SIDE_VALUES:
            errors[question.key] = f"{value!r} is not one of left, right, tie"
            continue
        answer = side_to_canonical(value, left_is_a=left_is_a)
        if answer not in question.allowed:
            allowed = ", ".join(question_choices(question, left_is_a=left_is_a))
            errors[question.key] = f"{value!r} is not allowed for this question (allowed: {allowed})"
            continue
        canonical[question.key] = answer
    if errors:
        raise AnswersInvalid(errors)
    return canonical


# One statement: lock the assignment; count the judgment on the pair if the assignment is active
# and either still holds its slot or the pair has a free one (an expired, reclaimed lease) or
# is a gold pair (no overlap limit); insert the judgment with its flags; close the assignment.
# Nothing is written unless all of it is.
_SUBMIT_SQL = """
WITH a AS (
    SELECT id, pair_id, left_is_a, holds_slot, status FROM annotation_assignment
    WHERE id = %(assignment)s AND rater_id = %(rater)s
    FOR UPDATE
), p AS (
    UPDATE annotation_pair AS p
    SET judgment_count = p.judgment_count + 1,
        lease_count = p.lease_count - CASE WHEN a.holds_slot THEN 1 ELSE 0 END
    FROM a
    WHERE p.id = a.pair_id AND a.status = 'active'
      AND (a.holds_slot OR p.is_gold OR p.judgment_count + p.lease_count < %(overlap)s)
    RETURNING p.id
), j AS (
    INSERT INTO annotation_judgment
        (project_id, pair_id, rater_id, assignment_id, answers, left_is_a, duration_ms,
         watch_a_seconds, watch_b_seconds, source, flags, created_at, updated_at)
    SELECT %(project)s, p.id, %(rater)s, a.id, %(answers)s::jsonb, a.left_is_a, %(duration)s::integer,
           %(watch_a)s::double precision, %(watch_b)s::double precision, 'app', %(flags)s::jsonb, %(now)s, %(now)s
    FROM p CROSS JOIN a
    RETURNING id
), u AS (
    UPDATE annotation_assignment AS x SET status = 'judged', holds_slot = FALSE, finished_at = %(now)s
    FROM j WHERE x.id = %(assignment)s
    RETURNING x.id
)
SELECT (SELECT id FROM j), (SELECT status FROM a), (SELECT count(*) FROM u)
"""
_SUBMIT = PreparedStatement(
    "vj_submit",
    _SUBMIT_SQL,
    {
        "assignment": "bigint",
        "rater": "bigint",
        "overlap": "integer",
        "project": "bigint",
        "answers": "text",
        "duration": "integer",
        "watch_a": "double precision",
        "watch_b": "double precision",
        "flags": "text",
        "now": "timestamptz",
    },
)


def _existing(*, assignment: Assignment, canonical: dict[str, str]) -> SubmitResult:
    """The rater's stored judgment of this pair: the same answers are a repeat, others a conflict."""
    stored = (
        Judgment.objects.filter(pair_id=assignment.pair_id, rater_id=assignment.rater_id)
        .values_list("id", "answers")
        .first()
    )
    if stored is None:  # judged, then the judgment was deleted by a manager
        raise AssignmentClosed("this pair was already judged")
    judgment_id, answers = stored
    if answers != canonical:
        raise AnswersDiffer("this pair is already judged with different answers; a judgment is not changed")
    return SubmitResult(judgment_id=judgment_id, created=False)


def _submit_postgresql(
    *, assignment: Assignment, overlap: int, canonical: dict[str, str], fields: dict[str, Any], now: datetime
) -> int | str | None:
    params = {
        "assignment": assignment.pk,
        "rater": assignment.rater_id,
        "project": assignment.project_id,
        "overlap": overlap,
        "answers": json.dumps(canonical, sort_keys=True),
        "now": now,
        **fields,
        "flags": json.dumps(fields["flags"]),
    }

    def run():
        with connection.cursor() as cursor:
            _SUBMIT.execute(cursor, params)
            return cursor.fetchone()

    judgment_id, status, _closed = _retrying(run)
    return judgment_id if judgment_id is not None else status


def _submit_portable(
    *, assignment: Assignment, overlap: int, canonical: dict[str, str], fields: dict[str, Any], now: datetime
) -> int | str | None:
    with transaction.atomic():
        current = (
            Assignment.objects.select_for_update()
            .filter(pk=assignment.pk, rater_id=assignment.rater_id)
            .only("id", "pair_id", "left_is_a", "holds_slot", "status")
            .first()
        )
        if current is None or current.status != Assignment.STATUS_ACTIVE:
            return current.status if current else None
        capacity = Q() if current.holds_slot else Q(is_gold=True) | Q(filled__lt=overlap)
        counted = (
            Pair.objects.filter(pk=current.pair_id)
            .alias(filled=F("judgment_count") + F("lease_count"))
            .filter(capacity)
            .update(
                judgment_count=F("judgment_count") + 1,
                lease_count=F("lease_count") - (1 if current.holds_slot else 0),
            )
        )
        if not counted:
            return current.status
        judgment = Judgment.objects.create(
            project_id=assignment.project_id,
            pair_id=current.pair_id,
            rater_id=assignment.rater_id,
            assignment_id=current.pk,
            answers=canonical,
            left_is_a=current.left_is_a,
            duration_ms=fields["duration"],
            watch_a_seconds=fields["watch_a"],
            watch_b_seconds=fields["watch_b"],
            flags=fields["flags"],
        )
        Assignment.objects.filter(pk=current.pk).update(
            status=Assignment.STATUS_JUDGED, holds_slot=False, finished_at=now
        )
        return judgment.pk


def judgment_submit(
    *,
    assignment: Assignment,
    answers: Mapping[str, Any],
    duration_ms: int | None = None,
    watch_left_seconds: float | None = None,
    watch_right_seconds: float | None = None,
    questions: Sequence[Question] | None = None,
    pair: PairFacts | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store the rater's answers for ``assignment`` (answers as {question key: left|right|tie}).

    Every required question must be answered, each with a value its question allows; they are
    stored as A/B/tie with ``left_is_a``, the time from first display (``duration_ms``) and the
    seconds each video was watched (the page's left/right, stored as A/B).

    Idempotent: the same answers again return the stored judgment (``created=False``); other
    answers raise AnswersDiffer. A lease that expired is still accepted while the pair is under
    its overlap, else LeaseExpired. A skipped assignment raises AssignmentClosed.
    The judgment's attention flags are stored with it; after a new judgment of a gold pair the
    rater's gold accuracy is checked (and may pause them).
    ``assignment`` needs ``project`` loaded (overlap, too_fast_seconds, the gold settings);
    ``questions`` defaults to its rubric and ``pair`` to the assignment's pair (one query each).
    """
    now = now or timezone.now()
    project = assignment.project
    if questions is None:
        questions = list(Question.objects.filter(project_id=assignment.project_id))
    canonical = answers_canonical(answers=answers, questions=questions, left_is_a=assignment.left_is_a)
    if assignment.status == Assignment.STATUS_JUDGED:
        return _existing(assignment=assignment, canonical=canonical)
    if assignment.status == Assignment.STATUS_SKIPPED:
        raise AssignmentClosed("this pair was skipped; it cannot be judged")
    watch_a, watch_b = (
        (watch_left_seconds, watch_right_seconds) if assignment.left_is_a else (watch_right_seconds, watch_left_seconds)
    )
    fields = {
        "duration": None if duration_ms is None else max(0, min(int(duration_ms), _MAX_DURATION_MS)),
        "watch_a": None if watch_a is None else max(0.0, float(watch_a)),
        "watch_b": None if watch_b is None else max(0.0, float(watch_b)),
    }
    if pair is None:
        pair = pair_facts(pair_id=assignment.pair_id) or PairFacts(False, {}, None, None)
    fields["flags"] = judgment_flags(
        duration_ms=fields["duration"],
        too_fast_seconds=project.too_fast_seconds,
        watch_a_seconds=fields["watch_a"],
        watch_b_seconds=fields["watch_b"],
        video_a_duration=pair.video_a_duration,
        video_b_duration=pair.video_b_duration,
    )
    arguments = {"assignment": assignment, "overlap": project.overlap, "canonical": canonical, "fields": fields}
    try:
        if _fast_path():
            outcome = _submit_postgresql(**arguments, now=now)
        else:
            # A whole transaction: retried as one when the database reports a deadlock or a lock.
            outcome = _retrying(lambda: _submit_portable(**arguments, now=now))
    except IntegrityError as exc:
        # The rater already has a judgment of this pair from elsewhere (an import).
        if "judgment_unique_pair_rater" in str(exc):
            return _existing(assignment=assignment, canonical=canonical)
        raise
    if isinstance(outcome, int):
        # Marks the cached analysis stale after commit: a cache set and add, no query.
        dashboard_invalidate(project_id=assignment.project_id)
        if pair.is_gold:
            rater_gold_check(project=project, rater_id=assignment.rater_id)
        return SubmitResult(judgment_id=outcome, created=True)
    if outcome is None:
        raise AssignmentMissing("no such assignment")
    if outcome == Assignment.STATUS_JUDGED:  # a concurrent identical request won the race
        return _existing(assignment=assignment, canonical=canonical)
    if outcome == Assignment.STATUS_SKIPPED:
        raise AssignmentClosed("this pair was skipped; it cannot be judged")
    raise LeaseExpired(
        "your lease on this pair expired and other raters have since completed it; "
        "this judgment was not stored. Please take the next pair."
    )
