"""Simulated raters for the reliability scenarios (aiohttp, in the scenario's process; the
server runs under gunicorn in its own processes) and the checks of what they stored.

Each rater loops until the deadline: ``next`` (sometimes twice in a row, a reload, which must
give back the same lease), then a ``skip`` or a ``submit`` (sometimes sent twice, which must
answer 200 with the same judgment and ``created: false``). Every answer is sorted into
expected and unexpected; during a declared outage a 503 with ``code: database_unavailable``
(or a refused connection) is expected, and the call is retried as a browser page would.
The session, the seeding and the gunicorn helpers come from ``benchmarks/bench_rater_loop.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.bench_rater_loop import _session, percentiles

CALLS = ("next", "reload", "submit", "repeat", "skip")


@dataclass
class Behaviour:
    reload: float = 0.06  # a rater reloads the page: next again
    skip: float = 0.07
    repeat: float = 0.07  # the same submit sent twice (a double click, a retry)
    think: tuple[float, float] = (0.0, 0.0)  # seconds between actions
    outage_ok: bool = False  # 503 database_unavailable / refused connections are expected
    retry_for: float = 90.0  # how long one call is retried through an outage


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CALLS})
    status: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in CALLS})
    unexpected: list[str] = field(default_factory=list)
    unexpected_count: int = 0
    outage_answers: Counter = field(default_factory=Counter)  # "503" / "connection" per call
    submissions: dict[int, int] = field(default_factory=dict)  # assignment -> judgment (from 2xx)
    created: int = 0
    repeats_ok: int = 0
    skipped: set[int] = field(default_factory=set)
    ok_per_second: Counter = field(default_factory=Counter)  # second since start -> 2xx answers
    slowest_outage_answer_s: float = 0.0
    slow: list[tuple[float, str, int, float]] = field(default_factory=list)  # (at s, call, status, took s) > 1 s
    started: float = field(default_factory=time.monotonic)

    def bad(self, text: str) -> None:
        self.unexpected_count += 1
        if len(self.unexpected) < 20:
            self.unexpected.append(text)


class Outage(Exception):
    """An answer that is expected only during an outage (the call is retried)."""


async def _call(session: Any, tally: Tally, call: str, url: str, headers: dict, body: Any, how: Behaviour
                ) -> tuple[int, Any]:
    """POST once; returns (status, parsed body). Raises Outage for an outage answer."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.post(url, json=body, headers=headers) as response:
            raw = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        elapsed = time.perf_counter() - started
        if how.outage_ok and not isinstance(exc, asyncio.TimeoutError):
            tally.outage_answers[f"{call} connection"] += 1
            tally.slowest_outage_answer_s = max(tally.slowest_outage_answer_s, elapsed)
            raise Outage(str(exc)) from exc
        tally.bad(f"{call}: {type(exc).__name__} after {elapsed:.1f} s: {exc}")
        raise
    elapsed = time.perf_counter() - started
    tally.latency[call].append(elapsed)
    tally.status[call][status] += 1
    if elapsed > 1.0 and len(tally.slow) < 50:
        tally.slow.append((round(time.monotonic() - tally.started - elapsed, 2), call, status, round(elapsed, 2)))
    data = None
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw[:200]
    if status == 503 and how.outage_ok and isinstance(data, dict) and data.get("code") == "database_unavailable":
        tally.outage_answers[f"{call} 503"] += 1
        tally.slowest_outage_answer_s = max(tally.slowest_outage_answer_s, elapsed)
        raise Outage("503")
    if 200 <= status < 300:
        tally.ok_per_second[int(time.monotonic() - tally.started)] += 1
    return status, data


async def _retrying(session: Any, tally: Tally, call: str, url: str, headers: dict, body: Any, how: Behaviour,
                    rng: random.Random) -> tuple[int, Any, bool]:
    """_call, retried through an outage. Returns (status, data, whether an outage answer came first)."""
    deadline = time.monotonic() + how.retry_for
    interrupted = False
    while True:
        try:
            status, data = await _call(session, tally, call, url, headers, body, how)
            return status, data, interrupted
        except Outage:
            interrupted = True
            if time.monotonic() > deadline:
                tally.bad(f"{call}: still failing after {how.retry_for} s of retries")
                raise
            await asyncio.sleep(rng.uniform(0.2, 0.5))


async def rater_loop(session: Any, base: str, project_id: int, token: str, deadline: float, tally: Tally,
                     how: Behaviour, seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Token {token}"}
    next_url = f"{base}/api/v1/projects/{project_id}/assignments/next/"
    while time.monotonic() < deadline:
        status, lease, _ = await _retrying(session, tally, "next", next_url, headers, None, how, rng)
        if status == 204:
            return
        if status != 200:
            tally.bad(f"next {status}: {lease!r}"[:300])
            return
        if rng.random() < how.reload:
            status, again, _ = await _retrying(session, tally, "reload", next_url, headers, None, how, rng)
            if status != 200 or again["assignment"] != lease["assignment"] or not again["resumed"]:
                tally.bad(f"reload {status}: not the same lease back ({lease['assignment']} -> {again!r})"[:300])
        if how.think[1]:
            await asyncio.sleep(rng.uniform(*how.think))
        assignment = lease["assignment"]
        if rng.random() < how.skip:
            body = {"reason": "video_broken", "note": "reliability test"}
            status, data, _ = await _retrying(session, tally, "skip", f"{base}{lease['skip_url']}", headers, body,
                                              how, rng)
            if status != 200:
                tally.bad(f"skip {status}: {data!r}"[:300])
            else:
                tally.skipped.add(assignment)
            continue
        answers = {q["key"]: rng.choice(q["choices"]) for q in lease["questions"]}
        body = {"answers": answers, "duration_ms": rng.randint(4000, 40000), "watch_left_seconds": 4.0,
                "watch_right_seconds": 4.0}
        url = f"{base}{lease['judgment_url']}"
        status, data, interrupted = await _retrying(session, tally, "submit", url, headers, body, how, rng)
        if status != 200 or not isinstance(data, dict):
            tally.bad(f"submit {status}: {data!r}"[:300])
            continue
        # created: false is right only when an outage interrupted an attempt that did commit.
        if not data["created"] and not interrupted:
            tally.bad(f"submit {status}: created false on a first submission ({data!r})")
        tally.created += bool(data["created"])
        _record(tally, assignment, data["judgment"])
        if rng.random() < how.repeat:
            status, again, _ = await _retrying(session, tally, "repeat", url, headers, body, how, rng)
            if status != 200 or again["created"] or again["judgment"] != data["judgment"]:
                tally.bad(f"repeat {status}: {again!r} after {data!r}"[:300])
            else:
                tally.repeats_ok += 1
        if how.think[1]:
            await asyncio.sleep(rng.uniform(*how.think))


def _record(tally: Tally, assignment: int, judgment: int) -> None:
    known = tally.submissions.setdefault(assignment, judgment)
    if known != judgment:
        tally.bad(f"assignment {assignment} answered judgment {judgment} after {known}")


async def run_raters(base: str, project_id: int, tokens: list[str], *, seconds: float, how: Behaviour,
                     events: list[tuple[float, str, Callable[[], Any]]] | None = None,
                     seed: int = 1) -> tuple[Tally, list[dict]]:
    """Every token rates for ``seconds``; ``events`` (at second, name, blocking function) run in
    a thread at their time meanwhile. Returns the tally and the events' log."""
    import aiohttp

    tally = Tally()
    log: list[dict] = []

    async def run_event(at: float, name: str, action: Callable[[], Any]) -> None:
        await asyncio.sleep(max(0.0, tally.started + at - time.monotonic()))
        began = time.monotonic()
        entry: dict[str, Any] = {"event": name, "at_s": round(began - tally.started, 2)}
        try:
            result = await asyncio.to_thread(action)
            if result is not None:
                entry["result"] = result
        except Exception as exc:  # recorded; the scenario's checks fail on it
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["took_s"] = round(time.monotonic() - began, 2)
        log.append(entry)

    deadline = tally.started + seconds
    async with _session(aiohttp, len(tokens)) as session:
        session._timeout = aiohttp.ClientTimeout(total=30)  # noqa: SLF001 - a hang shows as a failure
        tasks = [rater_loop(session, base, project_id, t, deadline, tally, how, seed * 100_000 + i)
                 for i, t in enumerate(tokens)]
        tasks += [run_event(at, name, action) for at, name, action in events or []]
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Outage):
            tally.bad(f"a rater stopped: {type(result).__name__}: {result}"[:300])
    return tally, sorted(log, key=lambda e: e["at_s"])


def summary(tally: Tally, elapsed: float) -> dict[str, Any]:
    calls = {}
    for call in CALLS:
        n = sum(tally.status[call].values())
        calls[call] = {
            "n": n,
            "per_s": round(n / elapsed, 1) if elapsed else 0.0,
            "status": {str(k): v for k, v in sorted(tally.status[call].items())},
            **{k: v for k, v in percentiles(tally.latency[call]).items() if k != "n"},
        }
    server_errors = sum(n for call in CALLS for s, n in tally.status[call].items() if s >= 500)
    outage_503 = sum(n for k, n in tally.outage_answers.items() if k.endswith("503"))
    return {
        "seconds": round(elapsed, 1),
        "requests": sum(c["n"] for c in calls.values()),
        "requests_per_s": round(sum(c["n"] for c in calls.values()) / elapsed, 1) if elapsed else 0.0,
        "judgments_created": tally.created,
        "judgments_per_s": round(tally.created / elapsed, 1) if elapsed else 0.0,
        "skips": len(tally.skipped),
        "repeats_ok": tally.repeats_ok,
        "calls": calls,
        "server_errors_other_than_outage_503": server_errors - outage_503,
        "outage_answers": dict(tally.outage_answers),
        "slowest_outage_answer_s": round(tally.slowest_outage_answer_s, 3),
        "unexpected_count": tally.unexpected_count,
        "unexpected": tally.unexpected,
        "slow_requests": tally.slow[:20],  # (started at s, call, status, took s), over 1 s
    }


def stored_invariants(*, project_id: int, tally: Tally) -> dict[str, Any]:
    """What the database holds against what the raters were told (run where Django is set up
    on the scenario's database)."""
    from django.db import connection

    with connection.cursor() as cur:

        def one(sql: str) -> int:
            cur.execute(sql, {"p": project_id})
            return int(cur.fetchone()[0])

        result: dict[str, Any] = {
            "pairs_over_overlap": one(
                """SELECT count(*) FROM annotation_pair p JOIN annotation_project pr ON pr.id = p.project_id
                   WHERE p.project_id = %(p)s AND p.judgment_count + p.lease_count > pr.overlap"""),
            "judgments_over_overlap": one(
                """SELECT count(*) FROM (SELECT p.id FROM annotation_pair p
                   JOIN annotation_project pr ON pr.id = p.project_id JOIN annotation_judgment j ON j.pair_id = p.id
                   WHERE p.project_id = %(p)s GROUP BY p.id, pr.overlap HAVING count(*) > pr.overlap) x"""),
            "judgment_count_mismatches": one(
                """SELECT count(*) FROM annotation_pair p WHERE p.project_id = %(p)s AND p.judgment_count <>
                   (SELECT count(*) FROM annotation_judgment j WHERE j.pair_id = p.id)"""),
            "lease_count_mismatches": one(
                """SELECT count(*) FROM annotation_pair p WHERE p.project_id = %(p)s AND p.lease_count <>
                   (SELECT count(*) FROM annotation_assignment a WHERE a.pair_id = p.id AND a.holds_slot)"""),
            "rater_twice_on_a_pair": one(
                """SELECT count(*) FROM (SELECT 1 FROM annotation_judgment WHERE project_id = %(p)s
                   GROUP BY pair_id, rater_id HAVING count(*) > 1) d"""),
            "judgments_in_db": one("SELECT count(*) FROM annotation_judgment WHERE project_id = %(p)s"),
        }
        cur.execute("SELECT assignment_id, id FROM annotation_judgment WHERE project_id = %(p)s", {"p": project_id})
        in_db = dict(cur.fetchall())
        cur.execute(
            "SELECT id FROM annotation_assignment WHERE project_id = %(p)s AND status = 'skipped'", {"p": project_id}
        )
        skipped_in_db = {row[0] for row in cur.fetchall()}
    told = tally.submissions
    result["submissions_2xx"] = len(told)
    result["told_but_missing"] = sum(1 for a, j in told.items() if in_db.get(a) != j)
    # Judgments nobody was told about can only come from a submit whose answer was lost in an
    # outage and never retried: the raters retry, so there must be none.
    result["stored_but_never_answered"] = sum(1 for a in in_db if a not in told)
    result["skips_told_but_missing"] = len(tally.skipped - skipped_in_db)
    result["ok"] = not any(
        result[k] for k in ("pairs_over_overlap", "judgments_over_overlap", "judgment_count_mismatches",
                            "lease_count_mismatches", "rater_twice_on_a_pair", "told_but_missing",
                            "stored_but_never_answered", "skips_told_but_missing")
    )
    return result
