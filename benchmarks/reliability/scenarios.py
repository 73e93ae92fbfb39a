"""The four reliability scenarios. Each runs in a process of its own (Django is set up once per
process, on the scenario's database), on loopback, bounded in time, and returns a result with
its measurements and ``checks`` (name -> passed); ``ok`` is all of them.

- ``load``: 200 simulated raters for 60 s against gunicorn and PostgreSQL;
- ``redis``: a private Redis (broker and cache) stopped for 30 s while raters judge and metric
  and media work is enqueued; the work is done once it is back;
- ``postgres``: a private PostgreSQL cluster restarted, then stopped for 10 s, under raters;
  gunicorn is never restarted;
- ``worker-kill``: a metrics worker SIGKILLed mid-batch (its pool process, then the whole
  worker): every video is computed afterwards and no video ever holds a partial score set.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from benchmarks import bench_rater_loop as bench
from benchmarks.reliability.procs import (
    PrivatePostgres,
    PrivateRedis,
    Processes,
    celery_cmd,
    children,
    cmdline,
    free_port,
    gunicorn_cmd,
    manage,
    wait_port,
)
from benchmarks.reliability.raters import Behaviour, Tally, run_raters, stored_invariants, summary

METRICS = ["temporal_flickering", "flow_score", "dynamic_degree", "warping_error", "motion_ac"]


def _migrate(env: dict[str, str]) -> None:
    done = manage(["migrate", "--noinput", "-v", "0"], env)
    if done.returncode:
        raise RuntimeError(f"migrate failed: {done.stderr[-2000:]}")


def _result(name: str, checks: dict[str, bool], **details: Any) -> dict[str, Any]:
    return {"scenario": name, "ok": all(checks.values()), "checks": checks, **details}


def _start_gunicorn(procs: Processes, env: dict[str, str], *, workers: int, threads: int) -> tuple[Any, int]:
    port = free_port()
    proc = procs.start("gunicorn", gunicorn_cmd(port, workers=workers, threads=threads), env)
    wait_port(port, timeout=60, alive=lambda: proc.poll() is None)
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc, port


def _make_videos(project: Any, media_root: Path, count: int, *, seconds: float, size: tuple[int, int],
                 tag: str) -> list[int]:
    """``count`` ready videos with real files (one prompt each, one generator)."""
    from annotation.models import Generator, Prompt, Video
    from tests.media_fixtures import make_h264_mp4

    generator = Generator.objects.create(project=project, name=f"{tag}-gen")
    ids = []
    for i in range(count):
        relative = f"browser/{tag}/{uuid.uuid4().hex}.mp4"
        (media_root / relative).parent.mkdir(parents=True, exist_ok=True)
        make_h264_mp4(media_root / relative, seconds=seconds, size=size, fps=24)
        prompt = Prompt.objects.create(project=project, external_id=f"{tag}{i}", text=f"a ball moves, clip {i}",
                                       tags={"motion": "fast"})  # so that every motion metric applies
        video = Video.objects.create(project=project, prompt=prompt, generator=generator, source=f"/bench/{i}.mp4",
                                     browser=relative, status=Video.STATUS_READY, fps=24, duration=seconds,
                                     width=size[0], height=size[1])
        ids.append(video.pk)
    return ids


def _seeded_app(env: dict[str, str], a: Any) -> dict[str, Any]:
    """Migrate the scenario's database, set Django up on it in this process and seed the rating
    project (``a.pairs`` pairs, ``a.raters`` raters with tokens, overlap 3)."""
    _migrate(env)
    bench.django_setup(env)
    return bench.seed(pairs=a.pairs, raters=a.raters, overlap=3)


def _warm_up(base: str, seeded: dict[str, Any]) -> Tally:
    """3 s of rating first (imports, connections, prepared statements), so that the measured
    phase starts warm; what it stores is checked with the rest (see ``_merge``)."""
    warm, _ = asyncio.run(run_raters(base, seeded["project_id"], seeded["tokens"], seconds=3, how=Behaviour()))
    return warm


def _merge(tally: Tally, warm: Tally) -> dict[str, int]:
    tally.unexpected_count += warm.unexpected_count
    tally.unexpected += warm.unexpected
    tally.skipped |= warm.skipped
    tally.submissions.update(warm.submissions)
    return {"judgments": warm.created, "unexpected": warm.unexpected_count}


def _score_counts(video_ids: list[int]) -> dict[int, int]:
    from django.db import connections
    from django.db.models import Count

    from metrics.models import MetricScore

    counts = dict.fromkeys(video_ids, 0)
    rows = MetricScore.objects.filter(video_id__in=video_ids).values("video_id").annotate(n=Count("id"))
    counts.update({row["video_id"]: row["n"] for row in rows})
    connections.close_all()  # polled from threads: no connection left behind
    return counts


def _wait(predicate: Any, *, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


# --- load ---------------------------------------------------------------------------------


def scenario_load(a: Any, workdir: Path) -> dict[str, Any]:
    db = f"{a.db_prefix}_load"
    env = bench.app_env(db, conn_max_age=600)
    bench.recreate_database(db)
    try:
        seeded = _seeded_app(env, a)
        from django.db import connections

        connections.close_all()
        with Processes(workdir / "logs") as procs:
            server, port = _start_gunicorn(procs, env, workers=a.workers, threads=a.threads)
            workers_before = sorted(children(server.pid))
            base = f"http://127.0.0.1:{port}"
            warm = _warm_up(base, seeded)
            tally, _ = asyncio.run(run_raters(base, seeded["project_id"], seeded["tokens"], seconds=a.seconds,
                                              how=Behaviour(), seed=2))
            elapsed = time.monotonic() - tally.started
            warm_up = _merge(tally, warm)
            alive = server.poll() is None and sorted(children(server.pid)) == workers_before
            log_tail = procs.tail("gunicorn")
        load = summary(tally, elapsed)
        stored = stored_invariants(project_id=seeded["project_id"], tally=tally)
        connections.close_all()
    finally:
        if not a.keep_db:
            bench.drop_database(db)
    checks = {
        "no 5xx": load["server_errors_other_than_outage_503"] == 0,
        "no unexpected answer": load["unexpected_count"] == 0,
        "every 2xx submission stored exactly once": stored["told_but_missing"] == 0
        and stored["stored_but_never_answered"] == 0 and stored["rater_twice_on_a_pair"] == 0,
        "no pair over its overlap": stored["pairs_over_overlap"] == 0 and stored["judgments_over_overlap"] == 0,
        "lease and judgment counters match the rows": stored["lease_count_mismatches"] == 0
        and stored["judgment_count_mismatches"] == 0,
        "raters kept judging": load["judgments_created"] > 0,
        "gunicorn and its workers still the same processes": alive,
    }
    return _result("load", checks, config={"raters": a.raters, "seconds": a.seconds, "pairs": seeded["pairs"],
                                           "overlap": 3, "workers": a.workers, "threads": a.threads},
                   warm_up=warm_up, load=load, stored=stored,
                   server_log_tail=log_tail if not all(checks.values()) else "")


# --- redis --------------------------------------------------------------------------------


def _upload(base: str, project_id: int, token: str, path: Path) -> dict[str, Any]:
    """POST a manifest to the import API (multipart, by hand: the standard library only)."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(  # noqa: S310 - an http URL on loopback
        f"{base}/api/v1/projects/{project_id}/imports/", data=body, method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return {"status": response.status, "body": json.loads(response.read())}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read()[:500].decode(errors="replace")}


def scenario_redis(a: Any, workdir: Path) -> dict[str, Any]:
    db = f"{a.db_prefix}_redis"
    media, imports = workdir / "media", workdir / "imports"
    media.mkdir(parents=True, exist_ok=True)
    imports.mkdir(parents=True, exist_ok=True)
    bench.recreate_database(db)
    log: list[dict[str, Any]] = []
    with Processes(workdir / "logs") as procs:
        try:
            redis = PrivateRedis(procs, workdir)
            redis.start()
            env = {
                **bench.app_env(db, conn_max_age=60),
                "CELERY_BROKER_URL": redis.url(0),
                "REDIS_URL": redis.url(1),  # the cache too, as in production
                "MEDIA_ROOT": str(media),
                "IMPORT_ROOTS": str(imports),
                "METRICS_ENABLED": "temporal_flickering",
                "CELERY_VISIBILITY_TIMEOUT": "20",  # an unacknowledged message comes back after 20 s
                "OUTBOX_RELAY_SECONDS": "2",
            }
            seeded = _seeded_app(env, a)
            from django.contrib.auth import get_user_model
            from django.db import connections
            from rest_framework.authtoken.models import Token

            from annotation.models import Membership, Video
            from annotation.services.projects import project_create
            from metrics.models import MetricScore
            from outbox.models import OutboxMessage
            from tests.media_fixtures import make_h264_mp4

            before = project_create(name="queued before the outage")
            during = project_create(name="enqueued during the outage")
            uploads = project_create(name="uploaded during the outage")
            before_ids = _make_videos(before, media, 20, seconds=1.0, size=(160, 96), tag="before")
            during_ids = _make_videos(during, media, 4, seconds=1.0, size=(160, 96), tag="during")
            manager = get_user_model().objects.create_user("outage-manager", password="x")  # noqa: S106
            Membership.objects.create(project=uploads, user=manager, role=Membership.ROLE_MANAGER)
            token = Token.objects.create(user=manager).key
            clip = make_h264_mp4(imports / "uploaded.mp4", seconds=1.0)
            manifest = imports / "manifest.csv"
            manifest.write_text(f"prompt_id,prompt,generator,video\nu1,a kite,UploadGen,{clip}\n")
            connections.close_all()

            server, port = _start_gunicorn(procs, env, workers=a.workers, threads=a.threads)
            base = f"http://127.0.0.1:{port}"
            gunicorn_workers = sorted(children(server.pid))
            worker = procs.start("celery", celery_cmd(queues="media,metrics"), env)

            def enqueue(project: Any) -> dict[str, Any]:
                done = manage(["compute_metrics", str(project.pk), "--enqueue", "--batch-size", "1",
                               "--no-progress"], env, timeout=60)
                return {"exit": done.returncode, "out": (done.stdout + done.stderr).strip()[-300:]}

            def kept_in_outbox() -> int:
                n = OutboxMessage.objects.count()
                connections.close_all()
                return n

            clock = time.monotonic

            def outage_script() -> dict[str, Any]:
                """In order: queue metric work, stop Redis while it is queued, enqueue and upload
                during the outage, start Redis again ``outage_seconds`` after the stop."""
                out: dict[str, Any] = {"enqueue_before": enqueue(before)}
                out["queued_in_redis_at_stop"] = redis.llen("metrics")
                redis.stop()
                stopped = clock()
                out["stopped_at"] = stopped
                time.sleep(2)
                out["enqueue_during"] = enqueue(during)
                out["upload_during"] = _upload(base, uploads.pk, token, manifest)
                out["kept_in_outbox"] = kept_in_outbox()
                time.sleep(max(0.0, stopped + a.outage_seconds - clock()))
                redis.start()
                out["started_at"] = clock()
                return out

            events = [(a.outage_at, "outage", outage_script)]
            warm = _warm_up(base, seeded)
            tally, log = asyncio.run(run_raters(base, seeded["project_id"], seeded["tokens"],
                                                seconds=a.outage_at + a.outage_seconds + 8 + a.after_seconds,
                                                how=Behaviour(think=(0.05, 0.2)), events=events, seed=2))
            elapsed = time.monotonic() - tally.started
            warm_up = _merge(tally, warm)
            worker_survived = worker.poll() is None

            def all_done() -> bool:
                counts = _score_counts(before_ids + during_ids)
                ready = Video.objects.filter(project=uploads, status=Video.STATUS_READY).values_list("pk", flat=True)
                uploaded_scored = bool(ready) and all(_score_counts(list(ready)).values())
                return all(counts.values()) and uploaded_scored and kept_in_outbox() == 0

            script = log[0].get("result") or {}
            stopped_s = script.get("stopped_at", tally.started) - tally.started
            started_s = script.get("started_at", tally.started) - tally.started
            finished = _wait(all_done, timeout=a.catch_up_timeout)
            caught_up_s = round(time.monotonic() - tally.started - started_s, 1)
            gunicorn_same = server.poll() is None and sorted(children(server.pid)) == gunicorn_workers
            load = summary(tally, elapsed)
            stored = stored_invariants(project_id=seeded["project_id"], tally=tally)
            uploaded = list(Video.objects.filter(project=uploads).values("status", "error"))
            scores = MetricScore.objects.filter(video_id__in=before_ids + during_ids).count()
            connections.close_all()
            worker_log = procs.tail("celery")
        finally:
            if not a.keep_db:
                bench.drop_database(db)
    checks = {
        "raters never saw an error (Redis is not on their path)": load["unexpected_count"] == 0
        and load["server_errors_other_than_outage_503"] == 0,
        "every 2xx submission stored exactly once": stored["ok"],
        "the outage script ran": "error" not in log[0] and script.get("enqueue_before", {}).get("exit") == 0
        and started_s - stopped_s >= a.outage_seconds,
        "raters judged through the outage": sum(
            tally.ok_per_second[s] for s in range(int(stopped_s) + 1, int(started_s))) > 0,
        "messages were queued in Redis when it stopped": script.get("queued_in_redis_at_stop", 0) > 0,
        "an enqueue during the outage succeeded": script.get("enqueue_during", {}).get("exit") == 0,
        "an upload during the outage answered 201": script.get("upload_during", {}).get("status") == 201,
        "the outage's messages waited in the outbox": script.get("kept_in_outbox", 0) > 0,
        "the worker rode out the outage": worker_survived,
        "all queued and kept work was done after Redis returned": finished,
        "gunicorn and its workers still the same processes": gunicorn_same,
    }
    for key in ("stopped_at", "started_at"):
        script.pop(key, None)
    return _result("redis", checks, config={"raters": a.raters, "outage_s": a.outage_seconds,
                                            "after_s": a.after_seconds},
                   outage={"stopped_at_s": round(stopped_s, 1), "started_at_s": round(started_s, 1), **script},
                   warm_up=warm_up, load=load, stored=stored, metric_scores=scores, uploaded_videos=uploaded,
                   work_done_s_after_redis_returned=caught_up_s if finished else None,
                   worker_log_tail=worker_log if not all(checks.values()) else "")


# --- postgres -----------------------------------------------------------------------------


def scenario_postgres(a: Any, workdir: Path) -> dict[str, Any]:
    pg = PrivatePostgres(logs=workdir / "logs", record=workdir / "postgres-root")
    try:
        pg.init()
        pg.start()
        pg.create_database("vidjudge")
        env = {**bench.app_env("unused", conn_max_age=60), "DATABASE_URL": pg.url("vidjudge"),
               "DATABASE_CONNECT_TIMEOUT": "3"}
        seeded = _seeded_app(env, a)
        from django.db import connections

        connections.close_all()
        with Processes(workdir / "logs") as procs:
            server, port = _start_gunicorn(procs, env, workers=a.workers, threads=a.threads)
            gunicorn_workers = sorted(children(server.pid))
            base = f"http://127.0.0.1:{port}"
            warm = _warm_up(base, seeded)
            events = [
                (5.0, "restart PostgreSQL (fast)", pg.restart),
                (12.0, "stop PostgreSQL (fast)", pg.stop),
                (12.0 + a.down_seconds, "start PostgreSQL", pg.start),
            ]
            total = 12.0 + a.down_seconds + a.after_seconds
            tally, log = asyncio.run(run_raters(base, seeded["project_id"], seeded["tokens"], seconds=total,
                                                how=Behaviour(think=(0.02, 0.1), outage_ok=True), events=events,
                                                seed=2))
            elapsed = time.monotonic() - tally.started
            warm_up = _merge(tally, warm)
            gunicorn_same = server.poll() is None and sorted(children(server.pid)) == gunicorn_workers
            server_log = procs.tail("gunicorn")
        load = summary(tally, elapsed)
        # Django reconnects by itself here too (the scenario's own connection was closed).
        stored = stored_invariants(project_id=seeded["project_id"], tally=tally)
        connections.close_all()
    finally:
        pg.destroy()
    started = next(e for e in log if e["event"] == "start PostgreSQL")
    back_at = started["at_s"] + started["took_s"]
    first_ok = min((s for s, n in tally.ok_per_second.items() if s >= back_at and n), default=None)
    down = (12.0, back_at)
    ok_while_down = sum(n for s, n in tally.ok_per_second.items() if down[0] + 1 <= s < down[1] - 1)
    checks = {
        "no event failed": all("error" not in e for e in log),
        "the outage was felt (503s or refused connections)": bool(tally.outage_answers),
        "only 503 database_unavailable during the outage, nothing unexpected": load["unexpected_count"] == 0
        and load["server_errors_other_than_outage_503"] == 0,
        "failed fast: no outage answer took 5 s or more": tally.slowest_outage_answer_s < 5.0,
        "nothing succeeded while the database was down": ok_while_down == 0,
        "requests succeed again after the restart": first_ok is not None,
        "gunicorn was not restarted (same master and workers)": gunicorn_same,
        "every 2xx submission stored exactly once": stored["ok"],
    }
    return _result("postgres", checks, config={"raters": a.raters, "down_s": a.down_seconds, "workers": a.workers,
                                               "threads": a.threads, "conn_max_age": 60},
                   events=log, warm_up=warm_up, load=load, stored=stored,
                   recovered_s_after_start=round(first_ok - back_at, 1) if first_ok is not None else None,
                   server_log_tail=server_log if not all(checks.values()) else "")


# --- worker kill --------------------------------------------------------------------------


def _pool_child(worker_pid: int) -> int | None:
    """The prefork pool process of a Celery worker (the one computing)."""
    for pid in children(worker_pid):
        if "celery" in cmdline(pid) or "python" in cmdline(pid):
            return pid
    return None


def scenario_worker_kill(a: Any, workdir: Path) -> dict[str, Any]:
    db = f"{a.db_prefix}_wk"
    media = workdir / "media"
    media.mkdir(parents=True, exist_ok=True)
    bench.recreate_database(db)
    rounds: list[dict[str, Any]] = []
    with Processes(workdir / "logs") as procs:
        try:
            redis = PrivateRedis(procs, workdir)
            redis.start()
            env = {**bench.app_env(db, conn_max_age=0), "CELERY_BROKER_URL": redis.url(0), "MEDIA_ROOT": str(media),
                   "METRICS_ENABLED": ",".join(METRICS), "METRICS_DECODE_WORKERS": "1",
                   "CELERY_VISIBILITY_TIMEOUT": str(a.visibility_timeout), "CELERY_UNACKED_RESTORE_SECONDS": "2"}
            _migrate(env)
            bench.django_setup(env)
            from django.db import connections

            from annotation.services.projects import project_create
            from metrics.models import MetricScore

            for kind in ("pool process", "whole worker"):
                project = project_create(name=f"killed: {kind}")
                ids = _make_videos(project, media, a.videos, seconds=a.clip_seconds, size=(320, 180),
                                   tag=kind.replace(" ", "-"))
                connections.close_all()
                worker = procs.start(f"celery-{kind}", celery_cmd(queues="metrics", pool="prefork"), env)
                done = manage(["compute_metrics", str(project.pk), "--enqueue", "--batch-size", str(a.videos),
                               "--no-progress"], env, timeout=60)
                entry: dict[str, Any] = {"killed": kind, "enqueue_exit": done.returncode, "videos": len(ids)}
                # Mid-batch: some videos have their scores, others not yet.
                entry["mid_batch"] = _wait(lambda ids=ids: 0 < sum(n > 0 for n in _score_counts(ids).values())
                                           < len(ids) - 1, timeout=180, every=0.1)
                child = _pool_child(worker.pid)
                if kind == "pool process":
                    os.kill(child, signal.SIGKILL)
                else:
                    procs.signal(f"celery-{kind}", signal.SIGKILL)  # the whole group: main and pool
                entry["at_kill"] = _score_counts(ids)
                entry["partial_at_kill"] = sorted(v for v, n in entry["at_kill"].items() if 0 < n < len(METRICS))
                if kind == "whole worker":
                    procs.stop(f"celery-{kind}")
                    time.sleep(0.5)
                    worker = procs.start(f"celery-{kind}-restarted", celery_cmd(queues="metrics", pool="prefork"),
                                         env)
                partial_seen: set[int] = set()

                def complete(ids: list[int] = ids, seen: set[int] = partial_seen) -> bool:
                    counts = _score_counts(ids)
                    seen.update(v for v, n in counts.items() if 0 < n < len(METRICS))
                    return all(n == len(METRICS) for n in counts.values())

                started = time.monotonic()
                entry["completed"] = _wait(complete, timeout=a.visibility_timeout + 180, every=0.1)
                entry["completed_s_after_kill"] = round(time.monotonic() - started, 1)
                entry["partial_seen_while_recomputing"] = sorted(partial_seen)
                statuses = MetricScore.objects.filter(video_id__in=ids).values_list("status", flat=True)
                entry["scores"] = {s: list(statuses).count(s) for s in set(statuses)}
                entry["worker_alive"] = worker.poll() is None
                connections.close_all()
                rounds.append(entry)
                for name in [n for n in procs.running if n.startswith("celery")]:
                    procs.stop(name)  # the next round's batch must go to the next round's worker
            log_tail = "\n".join(procs.tail(p.stem, 1500) for p in sorted((workdir / "logs").glob("celery*.log")))
        finally:
            if not a.keep_db:
                bench.drop_database(db)
    checks = {}
    for r in rounds:
        k = r["killed"]
        checks[f"{k}: killed mid-batch"] = r["mid_batch"] and r["enqueue_exit"] == 0
        checks[f"{k}: no partial score set at the kill or after"] = not r["partial_at_kill"] and not r[
            "partial_seen_while_recomputing"]
        checks[f"{k}: every video computed after the kill"] = r["completed"]
        checks[f"{k}: one ok score per video and metric"] = r["scores"] == {"ok": r["videos"] * len(METRICS)}
    return _result("worker-kill", checks, config={"videos": a.videos, "clip_seconds": a.clip_seconds,
                                                  "metrics": METRICS, "visibility_timeout_s": a.visibility_timeout},
                   rounds=rounds, worker_log_tail=log_tail if not all(checks.values()) else "")


SCENARIOS = {
    "load": scenario_load,
    "redis": scenario_redis,
    "postgres": scenario_postgres,
    "worker-kill": scenario_worker_kill,
}

