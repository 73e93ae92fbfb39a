"""The judgments feed: pages in id order up to a *settled* id, so incremental pulls lose nothing.

Why not "id > cursor" alone: ids come from a sequence when a row is inserted, but rows become
visible when their transaction commits. A transaction that drew id 10 and commits after one that
drew id 11 would be skipped by a client that already moved its cursor past 11.

The rule: a page only serves ids up to a horizon H such that every transaction that could still
commit a row with id ≤ H has ended. On PostgreSQL H is found without blocking writers:

1. read L, the judgment id sequence's last value (a cache of 1, the default for identity
   columns, is required and checked);
2. list the transactions that hold a ``RowExclusiveLock`` on the judgment table — every
   inserting transaction takes it before it draws an id and keeps it until it ends, so any
   transaction holding an id ≤ L that is not yet committed is in that list;
3. wait (briefly, ``JUDGMENTS_SETTLE_WAIT_SECONDS``, default 1 s) until each of them has ended,
   which PostgreSQL shows as its virtual transaction id disappearing from ``pg_locks``.

Then every id ≤ L is settled: committed, rolled back, or never used. If a writer is still
running after the wait (a long import), the previous horizon is kept — the client gets what is
settled and the rest on a later pull. Horizons are carried in the (signed) cursor and shared
through the cache, so a client paging through old judgments never waits.

SQLite (the embedded default) has one writer at a time that holds the database lock from its
first insert to its commit, so ids become visible in order and the horizon is simply the largest
id. Judgments are insert-only (answers are never changed), so the feed is a log of inserts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Q, QuerySet, TextField
from django.db.models.functions import Cast

from annotation.models import Generator, Judgment

DEFAULT_SETTLE_WAIT_SECONDS = 1.0
_POLL_SECONDS = 0.01
_TABLE = Judgment._meta.db_table


class SequenceCacheError(RuntimeError):
    """The judgment id sequence pre-allocates ids per session, which breaks the settle rule."""


@dataclass(frozen=True)
class JudgmentFilters:
    question: str | None = None
    generator: str | None = None
    rater: int | None = None
    updated_after: datetime | None = None


@dataclass(frozen=True)
class JudgmentPage:
    rows: list[dict[str, Any]]
    last_id: int  # resume after this id
    horizon: int  # ids up to here are settled
    has_more: bool  # more settled rows are ready now


def _settle_wait_seconds() -> float:
    return float(getattr(settings, "JUDGMENTS_SETTLE_WAIT_SECONDS", DEFAULT_SETTLE_WAIT_SECONDS))


def _cache_key() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::regclass::oid, (SELECT oid FROM pg_database WHERE datname = current_database())",
                       [_TABLE])
        table_oid, db_oid = cursor.fetchone()
    return f"vj:judgment-horizon:{db_oid}:{table_oid}"


def _postgres_horizon(*, known: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.seqcache, pg_sequence_last_value(s.seqrelid) FROM pg_sequence s "
            "WHERE s.seqrelid = pg_get_serial_sequence(%s, 'id')::regclass",
            [_TABLE],
        )
        seqcache, last_value = cursor.fetchone()
        if seqcache != 1:
            raise SequenceCacheError(f"the {_TABLE} id sequence has CACHE {seqcache}; the feed needs CACHE 1")
        last = int(last_value or 0)
        if last <= known:
            return known
        cursor.execute(
            "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'relation' "
            "AND relation = %s::regclass AND mode = 'RowExclusiveLock' AND pid IS DISTINCT FROM pg_backend_pid()",
            [_TABLE],
        )
        writers = [row[0] for row in cursor.fetchall()]
        deadline = time.monotonic() + _settle_wait_seconds()
        while writers:
            cursor.execute(
                "SELECT DISTINCT virtualxid FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(%s)",
                [writers],
            )
            writers = [row[0] for row in cursor.fetchall()]
            if not writers:
                break
            if time.monotonic() >= deadline:
                return known
            time.sleep(_POLL_SECONDS)
    return last


def judgments_settled_horizon(*, known: int = 0) -> int:
    """The largest judgment id H such that no row with id ≤ H can still appear (≥ ``known``).

    ``known`` is a horizon proven earlier (from a cursor); it is returned when nothing newer
    can be proven within the wait.
    """
    if connection.vendor != "postgresql":
        top = Judgment.objects.aggregate(top=Max("id"))["top"] or 0
        return max(known, int(top))
    key = _cache_key()
    shared = int(cache.get(key) or 0)
    horizon = _postgres_horizon(known=max(known, shared))
    if horizon > shared:
        cache.set(key, horizon, None)
    return horizon


def _filtered(*, project_id: int, filters: JudgmentFilters) -> QuerySet[Judgment]:
    qs = Judgment.objects.filter(project_id=project_id)
    if filters.question:
        qs = qs.filter(answers__has_key=filters.question)
    if filters.generator:
        qs = qs.filter(Q(pair__generator_a__name=filters.generator) | Q(pair__generator_b__name=filters.generator))
    if filters.rater is not None:
        qs = qs.filter(rater_id=filters.rater)
    if filters.updated_after is not None:
        qs = qs.filter(updated_at__gt=filters.updated_after)
    return qs


_FIELDS = (
    "id", "pair_id", "pair__prompt__external_id", "pair__generator_a_id", "pair__generator_b_id", "pair__is_gold",
    "rater_id",
    "answers", "left_is_a", "duration_ms", "watch_a_seconds", "watch_b_seconds", "source", "flags_text",
    "created_at", "updated_at",
)
_NO_FLAGS = ("[]", "")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _rows(qs: QuerySet[Judgment], *, after: int, upto: int, limit: int, names: dict[int, str]) -> list[dict]:
    rows = []
    # flags are almost always empty: read as text and decoded only when not; timestamps are
    # formatted here once rather than by the renderer's fallback encoder.
    page = qs.filter(id__gt=after, id__lte=upto).order_by("id").annotate(flags_text=Cast("flags", TextField()))
    for (jid, pair, prompt, gen_a, gen_b, is_gold, rater, answers, left, duration, watch_a, watch_b, source, flags,
         created, updated) in page.values_list(*_FIELDS)[:limit]:
        rows.append({
            "id": jid,
            "pair": pair,
            "prompt_id": prompt,
            "generator_a": names.get(gen_a),
            "generator_b": names.get(gen_b),
            "is_gold": is_gold,
            "rater": rater,
            "answers": answers,
            "left_is_a": left,
            "duration_ms": duration,
            "watch_a_seconds": watch_a,
            "watch_b_seconds": watch_b,
            "source": source,
            "flags": [] if flags in _NO_FLAGS else json.loads(flags),
            "created_at": _iso(created),
            "updated_at": _iso(updated),
        })
    return rows


def judgments_page(
    *, project_id: int, filters: JudgmentFilters, after: int, horizon: int, limit: int
) -> JudgmentPage:
    """Up to ``limit`` judgments with ``after`` < id ≤ a settled horizon, in id order.

    ``horizon`` is the one proven for the previous page (0 at first). A new horizon is looked
    for only when the known one does not fill the page, so paging through a backlog is one
    indexed range scan per page. Generator names come from one small query, not a join per row.
    """
    qs = _filtered(project_id=project_id, filters=filters)
    names = dict(Generator.objects.filter(project_id=project_id).values_list("id", "name"))
    rows = _rows(qs, after=after, upto=horizon, limit=limit + 1, names=names) if horizon > after else []
    if len(rows) <= limit:
        fresh = judgments_settled_horizon(known=horizon)
        if fresh > horizon:
            start = rows[-1]["id"] if rows else after
            rows += _rows(qs, after=max(start, horizon), upto=fresh, limit=limit + 1 - len(rows), names=names)
            horizon = fresh
    has_more = len(rows) > limit
    rows = rows[:limit]
    last_id = rows[-1]["id"] if rows else max(after, 0)
    if not has_more and not rows:
        # Nothing matched up to the horizon: resume from it, not from the old position.
        last_id = max(after, horizon)
    elif not has_more:
        last_id = max(last_id, horizon)
    return JudgmentPage(rows=rows, last_id=last_id, horizon=horizon, has_more=has_more)
