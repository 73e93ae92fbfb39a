"""Dashboard benchmark on PostgreSQL: opening the page at 1,000,000 judgments, warm cache.

Seeds a separate database (``vidjudge_bench_dashboard``) with COPY (``_seed_judgments``: 4
generators, 6 questions, 300 raters of whom 10 are excluded) plus two external metric scores per
video, so that the alignment and the scatter have data. Then:

1. the staleness check: ``judgments_stamp`` (what the page used to run per request: count/max over
   the project's judgments) against the change token the page reads now (one cache read);
2. the refresh task, as a worker runs it after judgments change (in a child process, so its
   peak RSS is its own): cold computation, then the idempotent re-run and the hourly recheck;
3. opening the dashboard as the logged-in manager with the result cached: the full request over
   real HTTP against gunicorn (fresh connection each time: nothing cached client-side), in
   headless Chromium until the page's script has drawn every table and plot (a fresh browser
   context each time: no browser cache), the same while the result is stale, the in-process
   Django test client, the ``?status=1`` poll, and the analysis API;
4. the submit-path overhead of ``dashboard_invalidate`` (after commit: a cache ``set`` and
   ``add``), with the debounce lock held (every submit but one per window) and with the enqueue
   (one per window; published to Redis).

Usage: .venv/bin/python benchmarks/bench_dashboard.py [--judgments 1000000] [--reuse] [--runs 10]
Target: the page opens in under 2 s at 1,000,000 judgments.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import recreate_postgres_db, table, write_result  # noqa: E402

DB_NAME = "vidjudge_bench_dashboard"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
STATIC_ROOT = Path(tempfile.gettempdir()) / "vidjudge-bench-dashboard-static"
METRICS = ("clip_score", "temporal_flickering")


def _env() -> dict[str, str]:
    return {"DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "CELERY_BROKER_URL": REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret", "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false", "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "STATIC_ROOT": str(STATIC_ROOT)}


def _django() -> None:
    os.environ.update(_env())
    import django

    django.setup()


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "p50": statistics.median(ordered), "max": ordered[-1], "min": ordered[0],
            "p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]}


def _seed_scores(project_id: int) -> int:
    """Two external scores per video (COPY), leaning with the generator so alignment is not noise."""
    import random

    from django.db import connection, transaction

    rng = random.Random(3)
    lean = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id, generator_id FROM annotation_video WHERE project_id = %s ORDER BY id", [project_id])
        videos = cursor.fetchall()
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM metrics_metricscore")
        first = cursor.fetchone()[0] + 1
        from benchmarks._seed_judgments import _copy

        def rows():
            n = 0
            for video_id, generator_id in videos:
                base = lean.setdefault(generator_id, rng.uniform(-1, 1))
                for metric in METRICS:
                    yield (f"{first + n}\t{video_id}\t{metric}\text\t{base + rng.gauss(0, 1):.5f}\tok\t\t{{}}"
                           f"\texternal\t\\N\t2026-11-24 12:00:00+00\n")
                    n += 1

        _copy(cursor, "metrics_metricscore", ("id", "video_id", "metric", "version", "value", "status", "error",
                                              "details", "source", "import_job_id", "computed_at"), rows())
        cursor.execute("SELECT setval(pg_get_serial_sequence('metrics_metricscore', 'id'), "
                       "(SELECT MAX(id) FROM metrics_metricscore))")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_metricscore")
    return len(videos) * len(METRICS)


# --- child: the refresh task ------------------------------------------------------------------------


def child_refresh() -> dict:
    _django()
    from django.core.cache import cache

    from annotation.models import Project
    from annotation.selectors.analysis import AnalysisParams, analysis_entry_key
    from annotation.tasks_dashboard import project_analysis_refresh_task

    project = Project.objects.get(name="bench export")
    cache.delete(analysis_entry_key(project=project, params=AnalysisParams()))
    baseline = _peak_rss_mb()
    start = time.perf_counter()
    project_analysis_refresh_task.apply(args=(project.pk,), throw=True)
    cold = time.perf_counter() - start
    peak = _peak_rss_mb()
    start = time.perf_counter()
    project_analysis_refresh_task.apply(args=(project.pk,), throw=True)  # current already: returns at once
    current = time.perf_counter() - start
    from django.test import override_settings

    with override_settings(DASHBOARD_RECHECK_SECONDS=0):  # aged: compare the fingerprint, nothing changed
        start = time.perf_counter()
        project_analysis_refresh_task.apply(args=(project.pk,), throw=True)
        recheck = time.perf_counter() - start
    entry = cache.get(analysis_entry_key(project=project, params=AnalysisParams()))
    return {"cold_seconds": cold, "current_seconds": current, "recheck_seconds": recheck, "peak_rss_mb": peak,
            "rss_before_mb": baseline, "compute_seconds": entry["compute_seconds"],
            "n_judgments": entry["n_judgments"], "entry_pickled_mb": len(__import__("pickle").dumps(entry)) / 2**20}


def _run_child(*args: str) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


# --- the server -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_gunicorn(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", "2", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **_env()},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _http_get(f"http://127.0.0.1:{port}/healthz", "")[1] == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("gunicorn did not answer")


def _http_get(url: str, cookie: str, accept: str = "text/html") -> tuple[float, int, int]:
    """GET on a new connection (nothing reused): seconds until the whole body is read, status, bytes."""
    return _http_fetch(url, cookie, accept)[:3]


def _http_fetch(url: str, cookie: str, accept: str = "text/html") -> tuple[float, int, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Cookie": cookie, "Accept": accept})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return time.perf_counter() - start, response.status, len(body), body


def _browser_runs(base: str, path: str, session: str, runs: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            for _ in range(runs):
                context = browser.new_context(base_url=base)  # a fresh profile: no browser cache
                context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                start = time.perf_counter()
                page.goto(path)
                page.wait_for_selector("body[data-dashboard-ready='1']", timeout=60_000)
                ready = time.perf_counter() - start
                timing = page.evaluate("""() => { const t = performance.getEntriesByType('navigation')[0];
                    return {response_end: t.responseEnd, dom_content_loaded: t.domContentLoadedEventEnd}; }""")
                rows = page.locator("#ranking-table tbody tr").count()
                if errors or rows < 2:
                    raise SystemExit(f"page did not render: rows={rows} errors={errors}")
                results.append({"ready_s": ready, "response_end_s": timing["response_end"] / 1000,
                                "dom_content_loaded_s": timing["dom_content_loaded"] / 1000})
                context.close()
        finally:
            browser.close()
    return results


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database.")
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child_refresh()))
        return

    seed_info: dict = {}
    if not args.reuse:
        recreate_postgres_db(DB_NAME)
        _django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from benchmarks._seed_judgments import seed

        start = time.perf_counter()
        seed_info = seed(judgments=args.judgments, log=lambda m: print(m, flush=True))
        seed_info.pop("token", None)  # a credential of the benchmark database: not recorded
        seed_info["metric_scores"] = _seed_scores(seed_info["project_id"])
        seed_info["seed_seconds"] = time.perf_counter() - start
        print(f"seeded in {seed_info['seed_seconds']:.1f} s: {seed_info}", flush=True)
    else:
        _django()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from annotation.models import Judgment, Project
    from annotation.selectors.analysis import AnalysisParams, analysis_change_token, analysis_lock_key
    from annotation.selectors.labels import judgments_stamp
    from annotation.services.dashboard import dashboard_invalidate
    from config.celery import app

    cache.clear()
    project = Project.objects.get(name="bench export")
    pid = project.pk
    n = Judgment.objects.filter(project_id=pid).count()
    rows: list[tuple] = []
    results: dict = {"judgments": n, "seed": seed_info}

    # 1. the staleness check
    stamp_times = []
    for _ in range(5):
        start = time.perf_counter()
        judgments_stamp(project_id=pid)
        stamp_times.append(time.perf_counter() - start)
    token_times = []
    for _ in range(200):
        start = time.perf_counter()
        analysis_change_token(project_id=pid)
        token_times.append(time.perf_counter() - start)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(id), max(updated_at), max(id) "
                       "FROM annotation_judgment WHERE project_id = %s", [pid])
        plan = cursor.fetchone()[0][0]
    results["staleness"] = {"judgments_stamp_s": _stats(stamp_times), "change_token_s": _stats(token_times),
                            "stamp_plan": plan["Plan"]["Node Type"], "stamp_plan_ms": plan["Execution Time"]}
    rows.append(("staleness check: judgments_stamp (old, per request)", len(stamp_times),
                 f"{_stats(stamp_times)['p50'] * 1000:.1f} ms", f"{max(stamp_times) * 1000:.1f} ms", ""))
    rows.append(("staleness check: change token (one cache read)", len(token_times),
                 f"{_stats(token_times)['p50'] * 1000:.2f} ms", f"{max(token_times) * 1000:.2f} ms", ""))
    print(rows[-2], rows[-1], sep="\n", flush=True)

    # 2. the refresh task (warms the cache as a worker would)
    refresh = _run_child()
    results["refresh_task"] = refresh
    rows.append(("refresh task, cold (frame + analyze + extras)", 1, f"{refresh['cold_seconds']:.2f} s", "",
                 f"peak RSS {refresh['peak_rss_mb']:.0f} MB; entry {refresh['entry_pickled_mb']:.1f} MB"))
    rows.append(("refresh task, already current", 1, f"{refresh['current_seconds'] * 1000:.1f} ms", "", ""))
    rows.append(("refresh task, hourly recheck (fingerprint)", 1, f"{refresh['recheck_seconds'] * 1000:.0f} ms", "",
                 ""))
    print(*rows[-3:], sep="\n", flush=True)

    # 3. opening the page
    STATIC_ROOT.mkdir(exist_ok=True)
    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()
    assert client.login(username="bench-manager", password="bench-password")
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
    path = f"/projects/{pid}/dashboard/"
    port = _free_port()
    server = _start_gunicorn(port)
    base = f"http://127.0.0.1:{port}"
    try:
        # A new worker's first requests pay for lazy imports, URL and template loading: shown apart.
        first = [_http_get(base + path, cookie)[0] for _ in range(4)]
        http = [_http_get(base + path, cookie) for _ in range(args.runs)]
        assert all(status == 200 for _, status, _ in http)
        html_bytes = http[0][2]
        browser = _browser_runs(base, path, session, max(3, args.runs // 2))
        poll = [_http_get(f"{base}{path}?status=1", cookie)[0] for _ in range(args.runs)]
        api_url = f"{base}/api/v1/projects/{pid}/analysis/"
        _http_get(api_url, cookie, "application/json")
        api = [_http_get(api_url, cookie, "application/json") for _ in range(args.runs)]
        # Stale: judgments changed after the result (token replaced, refresh queued and debounced).
        dashboard_invalidate(project_id=pid)
        assert cache.get(analysis_lock_key(project_id=pid, params=AnalysisParams())) is not None
        stale_http = [_http_get(base + path, cookie)[0] for _ in range(args.runs)]
        stale_browser = _browser_runs(base, path, session, max(3, args.runs // 2))
        stale_html = _http_fetch(base + path, cookie)[3]
        assert b'data-state="stale"' in stale_html
    finally:
        server.terminate()
        server.wait(timeout=30)
    client.get(path)  # first request in this process: imports and template loading
    in_process = []
    for _ in range(args.runs):
        start = time.perf_counter()
        response = client.get(path)
        in_process.append(time.perf_counter() - start)
        assert response.status_code == 200
    http_s = [t for t, _, _ in http]
    results["page"] = {
        "http_s": _stats(http_s), "html_bytes": html_bytes, "first_requests_of_new_workers_s": first,
        "browser_ready_s": _stats([b["ready_s"] for b in browser]),
        "browser_response_end_s": _stats([b["response_end_s"] for b in browser]),
        "stale_http_s": _stats(stale_http), "stale_browser_ready_s": _stats([b["ready_s"] for b in stale_browser]),
        "test_client_s": _stats(in_process), "status_poll_s": _stats(poll),
        "api_s": _stats([t for t, _, _ in api]), "api_bytes": api[0][2],
    }
    page = results["page"]
    for label, key, note in (
        ("page over HTTP (gunicorn, full request), warm cache", "http_s", f"{html_bytes / 2**20:.2f} MB HTML; "
         f"first 4 requests of new workers: {', '.join(f'{t * 1000:.0f}' for t in first)} ms"),
        ("page in Chromium until drawn (fresh context)", "browser_ready_s", "no browser cache"),
        ("page over HTTP, result stale (served, refresh queued)", "stale_http_s", ""),
        ("page in Chromium, result stale", "stale_browser_ready_s", ""),
        ("page, Django test client in process", "test_client_s", ""),
        ("?status=1 poll over HTTP", "status_poll_s", ""),
        ("GET /api/v1/projects/{id}/analysis/ over HTTP", "api_s", f"{page['api_bytes'] / 2**20:.2f} MB JSON"),
    ):
        s = page[key]
        rows.append((label, s["n"], f"{s['p50'] * 1000:.0f} ms", f"{s['max'] * 1000:.0f} ms", note))
        print(rows[-1], flush=True)

    # 4. the submit path: dashboard_invalidate after commit (outside a transaction it runs at once)
    lock = analysis_lock_key(project_id=pid, params=AnalysisParams())
    cache.add(lock, 1, 600)
    held = []
    for _ in range(2000):
        start = time.perf_counter()
        dashboard_invalidate(project_id=pid)
        held.append(time.perf_counter() - start)
    enqueue = []
    for _ in range(100):
        cache.delete(lock)  # the debounce window has passed
        start = time.perf_counter()
        dashboard_invalidate(project_id=pid)
        enqueue.append(time.perf_counter() - start)
    with app.connection_for_write() as conn:
        queued = conn.default_channel.queue_purge("default")
    cache.delete(lock)
    results["invalidate"] = {"lock_held_s": _stats(held), "with_enqueue_s": _stats(enqueue),
                             "messages_published": queued, "broker": "redis"}
    rows.append(("dashboard_invalidate, debounce lock held", len(held), f"{_stats(held)['p50'] * 1e6:.0f} µs",
                 f"p99 {_stats(held)['p99'] * 1e6:.0f} µs", "cache set + add"))
    rows.append(("dashboard_invalidate, with enqueue (1 per window)", len(enqueue),
                 f"{_stats(enqueue)['p50'] * 1e6:.0f} µs", f"p99 {_stats(enqueue)['p99'] * 1e6:.0f} µs",
                 f"{queued} messages published to Redis"))
    print(*rows[-2:], sep="\n", flush=True)

    results["load_average"] = os.getloadavg()
    results["versions"] = {"postgres": connection.cursor().connection.info.server_version}
    print()
    print(table(rows, ("what", "runs", "p50", "max", "note")))
    path_out = write_result("dashboard", results)
    print(f"\nwrote {path_out}")


if __name__ == "__main__":
    main()
