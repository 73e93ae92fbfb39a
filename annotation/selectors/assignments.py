"""Reads for the rater loop (each in one SQL statement) and the manager's view of raters."""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q
from django.utils import timezone

from annotation.models import Assignment, Membership, Pair, Project, Question

#: Seconds the per-project count of open pairs (for progress bars) may be stale.
OPEN_PAIRS_CACHE_SECONDS = 10


def _in_model_order(model, names: set[str]) -> tuple[str, ...]:
    # Model.from_db() with some fields wants the values in the model's field order.
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


# What the rater loop needs of a project: the lease, the page, quality control and the quota.
_PROJECT_FIELDS = _in_model_order(
    Project,
    {
        "id", "name", "overlap", "lease_seconds", "require_full_watch", "instructions", "created_at",
        "gold_rate", "gold_min", "gold_accuracy_threshold", "too_fast_seconds",
        "rater_quota", "completion_code", "completion_url",
    },
)
_QUESTION_FIELDS = _in_model_order(
    Question, {"id", "project_id", "key", "text", "help_text", "order", "allowed", "required"}
)
_ALLOWED_AT = _QUESTION_FIELDS.index("allowed")


class PreparedStatement:
    """One SQL statement of the rater loop, planned once per database connection on PostgreSQL.

    The rater loop's statements are large (CTEs and joins) and cheap to run: planning them cost
    more than executing them (about 1.2 ms against 0.7 ms for the lease). On PostgreSQL the
    first use on a connection sends PREPARE (one extra statement, once per connection); every
    use then sends EXECUTE. Elsewhere the SQL runs as it is. ``sql`` uses ``%(name)s``
    placeholders; ``types`` names each parameter's SQL type, in order. (Behind a pooler in
    transaction mode, such as PgBouncer before 1.21, set ``enabled`` to False.)
    """

    enabled = True
    _prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
    _registry: dict[str, PreparedStatement] = {}

    def __init__(self, name: str, sql: str, types: dict[str, str]) -> None:
        self.name = name
        self.sql = sql
        self.order = list(types)
        numbers = {key: index + 1 for index, key in enumerate(self.order)}
        positional = re.sub(r"%\((\w+)\)s", lambda m: f"${numbers[m.group(1)]}", sql).replace("%%", "%")
        signature = ", ".join(types.values())
        self.prepare_sql = f"PREPARE {name} ({signature}) AS {positional}"
        self.execute_sql = f"EXECUTE {name} ({', '.join(['%s'] * len(self.order))})"
        PreparedStatement._registry[name] = self

    def execute(self, cursor, params: dict[str, Any]) -> None:
        if not (self.enabled and connection.vendor == "postgresql"):
            cursor.execute(self.sql, params)
            return
        raw = connection.connection
        done = self._prepared.setdefault(raw, set())
        if self.name not in done:
            # All the loop's statements in one round trip, so a connection pays this once.
            missing = [st for name, st in self._registry.items() if name not in done]
            cursor.execute(";\n".join(st.prepare_sql for st in missing))
            done.update(st.name for st in missing)
        try:
            cursor.execute(self.execute_sql, [params[key] for key in self.order])
        except Exception as exc:
            if getattr(getattr(exc, "__cause__", None), "pgcode", None) == "26000":
                done.discard(self.name)  # the session lost it (a pooler, DISCARD ALL): prepare again
            raise


def prepared_statement_lost(exc: Exception) -> bool:
    """True for "prepared statement does not exist": retrying prepares it again."""
    return getattr(getattr(exc, "__cause__", None), "pgcode", None) == "26000"


@dataclass
class RaterProjectContext:
    """A project as one of its members sees it from the rater page or API.

    ``judged`` counts the member's judged assignments in the project, only when the project has
    a ``rater_quota`` (else 0: the count is skipped on the hot path).
    """

    project: Project
    role: str
    paused: bool
    paused_reason: str
    questions: list[Question] = field(default_factory=list)
    judged: int = 0

    @property
    def quota_reached(self) -> bool:
        quota = self.project.rater_quota
        return quota is not None and self.judged >= quota


@dataclass(frozen=True)
class PairFacts:
    """What a submission needs of its pair beyond the lease: gold status and answers (grading)
    and the two videos' durations (the not_watched flag)."""

    is_gold: bool
    gold_answers: dict[str, Any]
    video_a_duration: float | None
    video_b_duration: float | None


@dataclass
class AssignmentContext:
    """An assignment of the requesting rater, with its project, rubric and pair facts."""

    assignment: Assignment
    questions: list[Question] = field(default_factory=list)
    pair: PairFacts | None = None


def pair_facts(*, pair_id: int) -> PairFacts | None:
    """:class:`PairFacts` of one pair (one query); None when there is no such pair."""
    row = (
        Pair.objects.filter(pk=pair_id)
        .values_list("is_gold", "gold_answers", "video_a__duration", "video_b__duration")
        .first()
    )
    if row is None:
        return None
    return PairFacts(is_gold=row[0], gold_answers=row[1] or {}, video_a_duration=row[2], video_b_duration=row[3])


def _json(value: Any) -> Any:
    # Raw cursors hand JSON columns back as text on both PostgreSQL (Django's setting) and SQLite.
    return json.loads(value) if isinstance(value, str | bytes) else value


def _questions(rows: list[tuple], start: int) -> list[Question]:
    questions = []
    for row in rows:
        values = list(row[start : start + len(_QUESTION_FIELDS)])
        if values[0] is None:  # LEFT JOIN: a project without questions
            continue
        values[_ALLOWED_AT] = _json(values[_ALLOWED_AT])
        questions.append(Question.from_db("default", _QUESTION_FIELDS, values))
    return questions


_Q_COLUMNS = ", ".join(f'q."{name}"' for name in _QUESTION_FIELDS)
_P_COLUMNS = ", ".join(f'p."{name}"' for name in _PROJECT_FIELDS)

# The judged count (for the quota) is an uncorrelated subquery, so it runs once per statement,
# and only when the project has a quota.
_RATER_PROJECT_SQL = f"""
SELECT {_P_COLUMNS}, m.role, m.paused, m.paused_reason,
       (SELECT count(*) FROM annotation_assignment AS j
        WHERE j.project_id = %(project)s AND j.rater_id = %(user)s AND j.status = 'judged'
          AND EXISTS (SELECT 1 FROM annotation_project AS qp WHERE qp.id = %(project)s AND qp.rater_quota IS NOT NULL)),
       {_Q_COLUMNS}
FROM annotation_membership AS m
JOIN annotation_project AS p ON p.id = m.project_id
LEFT JOIN annotation_question AS q ON q.project_id = p.id
WHERE m.project_id = %(project)s AND m.user_id = %(user)s
ORDER BY q."order", q.id
"""
_RATER_PROJECT = PreparedStatement("vj_rater_project", _RATER_PROJECT_SQL, {"project": "bigint", "user": "bigint"})


def rater_project_context(*, project_id: int, user: AbstractBaseUser) -> RaterProjectContext | None:
    """The project, the user's membership and the rubric in one statement; None for non-members."""
    if not user.is_authenticated:
        return None
    with connection.cursor() as cursor:
        _RATER_PROJECT.execute(cursor, {"project": project_id, "user": user.pk})
        rows = cursor.fetchall()
    if not rows:
        return None
    n = len(_PROJECT_FIELDS)
    first = rows[0]
    project = Project.from_db("default", _PROJECT_FIELDS, first[:n])
    role, paused, paused_reason, judged = first[n : n + 4]
    return RaterProjectContext(
        project=project,
        role=role,
        paused=bool(paused),
        paused_reason=paused_reason,
        questions=_questions(rows, n + 4),
        judged=int(judged or 0),
    )


_A_FIELDS = _in_model_order(
    Assignment,
    {"id", "project_id", "pair_id", "rater_id", "left_is_a", "status", "leased_at", "expires_at", "holds_slot"},
)
_A_COLUMNS = ", ".join(f'a."{name}"' for name in _A_FIELDS)
_ASSIGNMENT_SQL = f"""
SELECT {_A_COLUMNS}, {_P_COLUMNS}, pa.is_gold, pa.gold_answers, va.duration, vb.duration, {_Q_COLUMNS}
FROM annotation_assignment AS a
JOIN annotation_project AS p ON p.id = a.project_id
JOIN annotation_membership AS m ON m.project_id = a.project_id AND m.user_id = a.rater_id
JOIN annotation_pair AS pa ON pa.id = a.pair_id
JOIN annotation_video AS va ON va.id = pa.video_a_id
JOIN annotation_video AS vb ON vb.id = pa.video_b_id
LEFT JOIN annotation_question AS q ON q.project_id = a.project_id
WHERE a.id = %(assignment)s AND a.rater_id = %(rater)s
ORDER BY q."order", q.id
"""
_ASSIGNMENT = PreparedStatement("vj_assignment", _ASSIGNMENT_SQL, {"assignment": "bigint", "rater": "bigint"})


def assignment_context(*, assignment_id: int, rater: AbstractBaseUser) -> AssignmentContext | None:
    """``rater``'s assignment with its project, rubric and :class:`PairFacts`, in one statement.

    None when there is no such assignment, when it is another rater's (the same answer, so ids
    of others' work are not revealed), or when the rater has left the project.
    """
    if not rater.is_authenticated:
        return None
    with connection.cursor() as cursor:
        _ASSIGNMENT.execute(cursor, {"assignment": assignment_id, "rater": rater.pk})
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    na, np_ = len(_A_FIELDS), len(_PROJECT_FIELDS)
    assignment = Assignment.from_db("default", _A_FIELDS, first[:na])
    assignment.project = Project.from_db("default", _PROJECT_FIELDS, first[na : na + np_])
    is_gold, gold_answers, duration_a, duration_b = first[na + np_ : na + np_ + 4]
    facts = PairFacts(
        is_gold=bool(is_gold), gold_answers=_json(gold_answers) or {}, video_a_duration=duration_a,
        video_b_duration=duration_b,
    )
    return AssignmentContext(assignment=assignment, questions=_questions(rows, na + np_ + 4), pair=facts)


def open_pairs_count(*, project: Project) -> int:
    """Normal (not gold) pairs of the project with fewer judgments than its overlap (cached a few seconds)."""
    # created_at in the key: a recreated database reusing the id never reads a stale count.
    stamp = project.created_at.timestamp() if project.created_at else 0
    key = f"vj:open-pairs:{project.pk}:{project.overlap}:{stamp}"
    count = cache.get(key)
    if count is None:
        count = Pair.objects.filter(project_id=project.pk, is_gold=False, judgment_count__lt=project.overlap).count()
        cache.set(key, count, OPEN_PAIRS_CACHE_SECONDS)
    return count


def rater_progress(*, project: Project, rater: AbstractBaseUser) -> tuple[int, int]:
    """(pairs the rater judged, normal pairs they judged or skipped that are still open) in ``project``."""
    counts = Assignment.objects.filter(project_id=project.pk, rater_id=rater.pk).aggregate(
        judged=Count("id", filter=Q(status=Assignment.STATUS_JUDGED)),
        seen_open=Count(
            "id",
            filter=Q(
                status__in=[Assignment.STATUS_JUDGED, Assignment.STATUS_SKIPPED],
                pair__judgment_count__lt=project.overlap,
                pair__is_gold=False,
            ),
        ),
    )
    return counts["judged"], counts["seen_open"]


def project_raters(*, project: Project) -> list[dict[str, Any]]:
    """The project's raters with their counts, for the manager (page and API)."""
    now = timezone.now()
    per_rater = {
        row["rater_id"]: row
        for row in Assignment.objects.filter(project=project)
        .values("rater_id")
        .annotate(
            judged=Count("id", filter=Q(status=Assignment.STATUS_JUDGED)),
            skipped=Count("id", filter=Q(status=Assignment.STATUS_SKIPPED)),
            leased=Count("id", filter=Q(holds_slot=True, expires_at__gt=now)),
            last_active=Max("leased_at"),
        )
    }
    raters = []
    for membership in (
        Membership.objects.filter(project=project, role=Membership.ROLE_RATER)
        .select_related("user")
        .order_by("user__username")
    ):
        counts = per_rater.get(membership.user_id, {})
        raters.append(
            {
                "id": membership.user_id,
                "username": membership.user.username,
                "paused": membership.paused,
                "excluded": membership.excluded,
                "judged": counts.get("judged", 0),
                "skipped": counts.get("skipped", 0),
                "has_lease": bool(counts.get("leased", 0)),
                "last_active": counts.get("last_active"),
            }
        )
    return raters


def skips_recent(*, project: Project, limit: int = 20) -> list[dict[str, Any]]:
    """The latest skips with their reasons, newest first (for the manager)."""
    labels = dict(Assignment.SKIP_REASONS)
    rows = (
        Assignment.objects.filter(project=project, status=Assignment.STATUS_SKIPPED)
        .select_related("rater")
        .order_by("-finished_at", "-id")[:limit]
    )
    return [
        {
            "assignment": a.pk,
            "pair": a.pair_id,
            "rater": a.rater.username,
            "reason": a.skip_reason,
            "reason_label": labels.get(a.skip_reason, a.skip_reason),
            "note": a.skip_note,
            "at": a.finished_at,
        }
        for a in rows
    ]


def skip_counts(*, project: Project) -> dict[str, int]:
    """How many skips per reason in the project."""
    return dict(
        Assignment.objects.filter(project=project, status=Assignment.STATUS_SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("id"))
        .values_list("skip_reason", "n")
    )
