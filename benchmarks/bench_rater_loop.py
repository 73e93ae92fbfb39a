"""Rater-loop load test: next -> submit against the app under gunicorn and the real PostgreSQL.

    .venv/bin/python benchmarks/bench_rater_loop.py            # full run (about 2 minutes)
    .venv/bin/python benchmarks/bench_rater_loop.py --quick    # smaller, for a smoke check

What it does, all on this machine (loopback only; every loop is bounded in time and count):

1. creates a separate database (``vidjudge_bench`` by default), migrates it, seeds a project
   with the default rubric, ``--pairs`` pairs (overlap 3) and ``--raters`` raters with tokens,
   using bulk inserts;
2. counts the SQL statements of each call in process (token auth included);
3. starts gunicorn (gthread) on 127.0.0.1 with that database;
4. capacity: every rater loops next -> submit with no pause (closed loop) for
   ``--capacity-seconds``: judgments per second at saturation;
5. latency: an open-loop load of ``--rate`` judgments per second (Poisson arrivals), each
   arrival served by an idle rater: p50/p95/p99 of each call;
6. checks the invariants in the database: no pair over its overlap, counters equal to the
   rows, no rater twice on a pair, every 2xx submission stored exactly once;
7. prints a table and writes ``benchmarks/results/rater_loop.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "rater_loop.json"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


# --- environment ----------------------------------------------------------------------------


def app_env(db: str, conn_max_age: int) -> dict[str, str]:
    """The production-like environment of the app under test (DEBUG off, persistent connections)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{db}",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_HSTS_SECONDS": "0",
            "CONN_MAX_AGE": str(conn_max_age),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def machine() -> dict[str, str]:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    model = next(
        (line.split(":", 1)[1].strip() for line in run(["lscpu"]).splitlines() if line.startswith("Model name")),
        platform.processor(),
    )
    return {"nproc": run(["nproc"]), "cpu": model, "free_h": run(["free", "-h"]), "python": platform.python_version()}


def recreate_database(db: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [db])
        cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
        cur.execute(f'CREATE DATABASE "{db}"')
    conn.close()


def drop_database(db: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [db])
        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    conn.close()


# --- seeding and SQL counts (in process) ----------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    for key in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(key, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(*, pairs: int, raters: int, overlap: int) -> dict[str, Any]:
    """Bulk-insert a project, its prompts/videos/pairs, and raters with tokens."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotation.models import Generator, Membership, Pair, Prompt, Video
    from annotation.services.projects import project_create

    started = time.perf_counter()
    project = project_create(name="Rater loop benchmark", overlap=overlap, lease_seconds=900)
    gens = Generator.objects.bulk_create(Generator(project=project, name=f"bench-gen-{i}") for i in range(4))
    per_prompt = 6  # 4 generators: 6 pairs per prompt
    n_prompts = -(-pairs // per_prompt)
    prompts = Prompt.objects.bulk_create(
        (Prompt(project=project, external_id=f"b{i}", text=f"benchmark prompt {i}") for i in range(n_prompts)),
        batch_size=5000,
    )
    videos = Video.objects.bulk_create(
        (
            Video(
                project=project,
                prompt=p,
                generator=g,
                source="bench",
                browser=f"bench/{p.pk}-{g.pk}.mp4",
                status=Video.STATUS_READY,
                fps=24,
                duration=4,
            )
            for p in prompts
            for g in gens
        ),
        batch_size=5000,
    )
    by_prompt: dict[int, list[Video]] = {}
    for v in videos:
        by_prompt.setdefault(v.prompt_id, []).append(v)
    new_pairs = []
    for prompt_id, vids in by_prompt.items():
        vids.sort(key=lambda v: v.generator_id)
        for i in range(len(vids)):
            for j in range(i + 1, len(vids)):
                if len(new_pairs) < pairs:
                    a, b = vids[i], vids[j]
                    new_pairs.append(
                        Pair(
                            project=project,
                            prompt_id=prompt_id,
                            generator_a_id=a.generator_id,
                            generator_b_id=b.generator_id,
                            video_a=a,
                            video_b=b,
                        )
                    )
    Pair.objects.bulk_create(new_pairs, batch_size=5000)
    user_model = get_user_model()
    password = make_password("bench")
    users = user_model.objects.bulk_create(
        user_model(username=f"bench-rater-{i}", password=password) for i in range(raters + 2)
    )
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Membership.ROLE_RATER) for u in users)
    tokens = Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in users)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "project_id": project.pk,
        "pairs": len(new_pairs),
        "videos": len(videos),
        "tokens": [t.key for t in tokens[:raters]],
        "probe_tokens": [t.key for t in tokens[raters:]],
        "seconds": round(time.perf_counter() - started, 2),
    }


def sql_counts(*, project_id: int, probe_tokens: list[str]) -> dict[str, Any]:
    """SQL statements per call, measured in process (token auth included), steady state."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from annotation.models import Question

    keys = list(Question.objects.filter(project_id=project_id).values_list("key", flat=True))
    warm, probe = (Client(HTTP_AUTHORIZATION=f"Token {t}") for t in probe_tokens)
    warm.post(f"/api/v1/projects/{project_id}/assignments/next/")  # fills the open-pair count cache
    out: dict[str, Any] = {}

    def measure(name: str, fn) -> Any:
        with CaptureQueriesContext(connection) as ctx:
            response = fn()
        sql = [re.sub(r"'[0-9a-f]{40}'", "'<token>'", q["sql"])[:90] for q in ctx.captured_queries]
        out[name] = {"statements": len(ctx.captured_queries), "sql": sql}
        return response

    lease = measure("next", lambda: probe.post(f"/api/v1/projects/{project_id}/assignments/next/")).json()
    measure("next (reload)", lambda: probe.post(f"/api/v1/projects/{project_id}/assignments/next/"))
    body = json.dumps({"answers": dict.fromkeys(keys, "tie"), "duration_ms": 1000})
    stored = measure("submit", lambda: probe.post(lease["judgment_url"], body, content_type="application/json"))
    measure("submit (repeat)", lambda: probe.post(lease["judgment_url"], body, content_type="application/json"))
    out["_stored"] = (lease["assignment"], stored.json()["judgment"])
    return out


# --- CPU accounting (Linux /proc) ------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _postgres_pids(db: str) -> list[int]:
    """The server processes working for ``db`` (its client backends) and PostgreSQL's own
    background processes (WAL writer, checkpointer, autovacuum): not other databases' backends."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE (datname = %s OR backend_type <> 'client backend')"
                " AND pid <> pg_backend_pid()",
                [db],
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def cpu_snapshot(server_pid: int, db: str) -> dict[str, Any]:
    """CPU seconds used so far by the app server (master + workers), PostgreSQL, and this client."""
    server = _cpu_seconds(server_pid) + sum(_cpu_seconds(c) for c in _children(server_pid))
    postgres = {pid: _cpu_seconds(pid) for pid in _postgres_pids(db)}
    usage = os.times()
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / _TICKS  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        busy = 0.0
    return {
        "app": server,
        "postgres": postgres,
        "client": usage.user + usage.system,
        "machine_busy": busy,
        "wall": time.monotonic(),
    }


def cpu_per_judgment(before: dict[str, Any], after: dict[str, Any], judgments: int) -> dict[str, float]:
    used = {k: after[k] - before[k] for k in ("app", "client")}
    # Per process: one that started meanwhile counts whole; one that ended is lost (small).
    used["postgres"] = sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
    result = {k: round(v * 1000 / max(judgments, 1), 2) for k, v in used.items()}
    # Cores busy with anything else on the machine meanwhile (other people's work): it is
    # shared, and this is what explains a run slower than its CPU cost per judgment predicts.
    wall = after["wall"] - before["wall"]
    others = after["machine_busy"] - before["machine_busy"] - sum(used.values())
    result["other_processes_cores"] = round(max(0.0, others) / wall, 2) if wall > 0 else 0.0
    # What the CPU cost alone allows when nothing else runs: cores / CPU seconds per judgment.
    per_judgment = sum(used.values()) / max(judgments, 1)
    result["cpu_bound_judgments_per_s"] = round((os.cpu_count() or 1) / per_judgment, 1) if per_judgment else 0.0
    return result


# --- the server -------------------------------------------------------------------------


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--backlog",
        "512",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited at start") from None
            time.sleep(0.2)
    stop_gunicorn(proc)
    raise RuntimeError("gunicorn did not start")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# --- the load (async clients) -----------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"next": [], "submit": []}
        self.status: dict[str, dict[int, int]] = {"next": {}, "submit": {}}
        self.stored: list[tuple[int, int]] = []  # (assignment, judgment) of every created 2xx submission
        self.repeats = 0
        self.errors: list[str] = []

    def record(self, call: str, status: int, seconds: float) -> None:
        self.latency[call].append(seconds)
        self.status[call][status] = self.status[call].get(status, 0) + 1


async def one_judgment(session, base: str, project_id: int, token: str, stats: Stats, rng: random.Random) -> str:
    """next -> submit for one rater. Returns "judged", "empty" or "error"."""
    headers = {"Authorization": f"Token {token}"}
    started = time.perf_counter()
    async with session.post(f"{base}/api/v1/projects/{project_id}/assignments/next/", headers=headers) as response:
        body = await response.read()
        stats.record("next", response.status, time.perf_counter() - started)
    if response.status == 204:
        return "empty"
    if response.status != 200:
        stats.errors.append(f"next {response.status}: {body[:200]!r}")
        return "error"
    lease = json.loads(body)
    answers = {q["key"]: rng.choice(q["choices"]) for q in lease["questions"]}
    payload = {
        "answers": answers,
        "duration_ms": rng.randint(5000, 60000),
        "watch_left_seconds": 4.0,
        "watch_right_seconds": 4.0,
    }
    started = time.perf_counter()
    async with session.post(f"{base}{lease['judgment_url']}", json=payload, headers=headers) as response:
        body = await response.read()
        stats.record("submit", response.status, time.perf_counter() - started)
    if response.status != 200:
        stats.errors.append(f"submit {response.status}: {body[:200]!r}")
        return "error"
    result = json.loads(body)
    if result["created"]:
        stats.stored.append((lease["assignment"], result["judgment"]))
    else:
        stats.repeats += 1
    return "judged"


def _session(aiohttp, raters: int):
    connector = aiohttp.TCPConnector(limit=raters + 10, keepalive_timeout=30)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15))


async def capacity(base: str, project_id: int, tokens: list[str], seconds: float, max_per_rater: int) -> dict:
    """Closed loop: every rater judges as fast as the server answers."""
    import aiohttp

    stats = Stats()
    deadline = time.perf_counter() + seconds

    async with _session(aiohttp, len(tokens)) as session:

        async def rater(token: str, seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(max_per_rater):  # bounded in count ...
                if time.perf_counter() >= deadline:  # ... and in time
                    return
                if await one_judgment(session, base, project_id, token, stats, rng) != "judged":
                    return

        started = time.perf_counter()
        await asyncio.gather(*(rater(t, i) for i, t in enumerate(tokens)))
        elapsed = time.perf_counter() - started
    return {"stats": stats, "elapsed": elapsed}


async def open_loop(base: str, project_id: int, tokens: list[str], rate: float, seconds: float, seed: int) -> dict:
    """Poisson arrivals at ``rate`` judgments/s; each served by an idle rater."""
    import aiohttp

    stats = Stats()
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            break
        arrivals.append(t)
    idle: asyncio.Queue[str] = asyncio.Queue()
    for token in tokens:
        idle.put_nowait(token)
    waits: list[float] = []

    async with _session(aiohttp, len(tokens)) as session:

        async def serve(at: float, seed: int) -> None:
            token = await idle.get()
            waits.append(time.perf_counter() - start - at)
            try:
                await one_judgment(session, base, project_id, token, stats, random.Random(seed))
            finally:
                idle.put_nowait(token)

        start = time.perf_counter()
        tasks = []
        for i, at in enumerate(arrivals):
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(serve(at, i)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
        elapsed = time.perf_counter() - start
    return {"stats": stats, "elapsed": elapsed, "arrivals": len(arrivals), "max_wait_for_rater_s": max(waits or [0])}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(values),
        "p50_ms": round(at(0.50), 2),
        "p95_ms": round(at(0.95), 2),
        "p99_ms": round(at(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


def summarise(name: str, run: dict) -> dict:
    stats: Stats = run["stats"]
    judged = len(stats.stored)
    return {
        "phase": name,
        "seconds": round(run["elapsed"], 2),
        "judgments": judged,
        "judgments_per_s": round(judged / run["elapsed"], 1),
        "next": percentiles(stats.latency["next"]),
        "submit": percentiles(stats.latency["submit"]),
        "status": {k: {str(s): n for s, n in v.items()} for k, v in stats.status.items()},
        "errors": stats.errors[:10],
        "error_count": len(stats.errors),
        **{k: v for k, v in run.items() if k not in ("stats", "elapsed")},
    }


# --- invariants ---------------------------------------------------------------------------


def invariants(db: str, project_id: int, stored: list[tuple[int, int]]) -> dict[str, Any]:
    import psycopg2

    conn = psycopg2.connect(dbname=db, **PG)
    with conn.cursor() as cur:

        def one(sql: str) -> Any:
            cur.execute(sql, {"p": project_id})
            return cur.fetchone()[0]

        result = {
            "pairs_over_overlap": one(
                """SELECT count(*) FROM annotation_pair p JOIN annotation_project pr ON pr.id = p.project_id
                   WHERE p.project_id = %(p)s AND p.judgment_count + p.lease_count > pr.overlap"""
            ),
            "judgment_count_mismatches": one(
                """SELECT count(*) FROM annotation_pair p WHERE p.project_id = %(p)s AND p.judgment_count <>
                   (SELECT count(*) FROM annotation_judgment j WHERE j.pair_id = p.id)"""
            ),
            "lease_count_mismatches": one(
                """SELECT count(*) FROM annotation_pair p WHERE p.project_id = %(p)s AND p.lease_count <>
                   (SELECT count(*) FROM annotation_assignment a WHERE a.pair_id = p.id AND a.holds_slot)"""
            ),
            "rater_twice_on_a_pair": one(
                """SELECT count(*) FROM (SELECT 1 FROM annotation_judgment WHERE project_id = %(p)s
                   GROUP BY pair_id, rater_id HAVING count(*) > 1) d"""
            ),
            "judgments_in_db": one("SELECT count(*) FROM annotation_judgment WHERE project_id = %(p)s"),
        }
        cur.execute("SELECT id, assignment_id FROM annotation_judgment WHERE project_id = %(p)s", {"p": project_id})
        in_db = {(assignment, judgment) for judgment, assignment in cur.fetchall()}
    conn.close()
    reported = set(stored)
    result["submissions_2xx_created"] = len(stored)
    result["every_2xx_stored_exactly_once"] = len(reported) == len(stored) and reported == in_db
    result["ok"] = (
        result["every_2xx_stored_exactly_once"]
        and not result["pairs_over_overlap"]
        and not result["judgment_count_mismatches"]
        and not result["lease_count_mismatches"]
        and not result["rater_twice_on_a_pair"]
    )
    return result


# --- main ---------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    print()
    print(f"machine: {report['machine']['nproc']} cores, {report['machine']['cpu']}")
    print(
        f"server: gunicorn gthread, {report['config']['workers']} workers x {report['config']['threads']} threads, "
        f"CONN_MAX_AGE={report['config']['conn_max_age']}; {report['seed']['pairs']} pairs, overlap "
        f"{report['config']['overlap']}, {report['config']['raters']} raters"
    )
    print()
    print("SQL statements per call (token auth included):")
    for name, value in report["sql_statements"].items():
        print(f"  {name:<16} {value['statements']}")
    print()
    header = (
        f"{'phase':<10} {'judg/s':>7} {'n':>6}  {'call':<7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for phase in report["phases"]:
        for call in ("next", "submit"):
            p = phase[call]
            if not p:
                continue
            print(
                f"{phase['phase']:<10} {phase['judgments_per_s']:>7} {phase['judgments']:>6}  {call:<7} "
                f"{p['p50_ms']:>7} {p['p95_ms']:>7} {p['p99_ms']:>7} {p['max_ms']:>7}"
            )
    print()
    for phase in report["phases"]:
        print(f"CPU ms per judgment, {phase['phase']}: {phase.get('cpu_ms_per_judgment')}")
    print("invariants:", json.dumps(report["invariants"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="vidjudge_bench")
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=600)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--capacity-seconds", type=float, default=30)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=100, help="open-loop judgments per second")
    parser.add_argument("--quick", action="store_true", help="2,000 pairs and 5 s phases")
    parser.add_argument("--keep-db", action="store_true", help="leave the benchmark database in place")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.capacity_seconds, args.latency_seconds = 2_000, 5, 5

    env = app_env(args.db, args.conn_max_age)
    print(f"creating database {args.db} and migrating ...", flush=True)
    recreate_database(args.db)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    django_setup(env)
    seeded = seed(pairs=args.pairs, raters=args.raters, overlap=args.overlap)
    print(f"seeded {seeded['pairs']} pairs, {seeded['videos']} videos in {seeded['seconds']} s", flush=True)
    counts = sql_counts(project_id=seeded["project_id"], probe_tokens=seeded["probe_tokens"])
    probe_stored = counts.pop("_stored")
    from django.db import connections

    connections.close_all()

    proc = start_gunicorn(env, args.port, args.workers, args.threads)
    base = f"http://127.0.0.1:{args.port}"
    phases = []
    try:
        project_id, tokens = seeded["project_id"], seeded["tokens"]
        warm = asyncio.run(capacity(base, project_id, tokens, seconds=3, max_per_rater=5))
        print(f"warm-up: {len(warm['stats'].stored)} judgments", flush=True)
        stored = [probe_stored, *warm["stats"].stored]
        # Leave the per-process open-pair cache out of it: both phases run warm.
        before = cpu_snapshot(proc.pid, args.db)
        cap = asyncio.run(capacity(base, project_id, tokens, seconds=args.capacity_seconds, max_per_rater=100_000))
        phases.append(summarise("capacity", cap))
        phases[-1]["cpu_ms_per_judgment"] = cpu_per_judgment(
            before, cpu_snapshot(proc.pid, args.db), len(cap["stats"].stored)
        )
        stored += cap["stats"].stored
        print(f"capacity: {phases[-1]['judgments_per_s']} judgments/s", flush=True)
        before = cpu_snapshot(proc.pid, args.db)
        lat = asyncio.run(open_loop(base, project_id, tokens, args.rate, args.latency_seconds, seed=7))
        phases.append(summarise(f"open {args.rate:g}/s", lat))
        phases[-1]["cpu_ms_per_judgment"] = cpu_per_judgment(
            before, cpu_snapshot(proc.pid, args.db), len(lat["stats"].stored)
        )
        stored += lat["stats"].stored
    finally:
        stop_gunicorn(proc)
    report = {
        "benchmark": "rater_loop",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {
            "workers": args.workers,
            "threads": args.threads,
            "conn_max_age": args.conn_max_age,
            "overlap": args.overlap,
            "raters": args.raters,
            "rate": args.rate,
            "capacity_seconds": args.capacity_seconds,
            "latency_seconds": args.latency_seconds,
        },
        "seed": {k: v for k, v in seeded.items() if "token" not in k},
        "sql_statements": counts,
        "phases": phases,
        "invariants": invariants(args.db, seeded["project_id"], stored),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if not args.keep_db:
        print("dropping the benchmark database ...", flush=True)
        drop_database(args.db)
        print("done", flush=True)
    return 0 if report["invariants"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
