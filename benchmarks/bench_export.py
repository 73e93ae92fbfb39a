"""Export and pull benchmark on PostgreSQL: 1,000,000 judgments.

Seeds a separate database (``vidjudge_bench_export``) with COPY, then, each in its own process
so that its peak RSS is its own:

- exports of every judgment (raw) to JSON Lines, Parquet and CSV through the export service
  (the code path of the API, the job and the command), and JSON Lines through the API itself
  (django.test.Client, token auth, streamed body consumed chunk by chunk);
- labels exports (every question) and preference exports (final_verdict, TRL format) to JSON
  Lines and Parquet, majority and Dawid–Skene;
- a full pull of the judgments feed page by page (5,000 per page, token auth, in-process WSGI).

Peak RSS is the child's ``VmHWM`` (/proc/self/status): the high-water mark of the process image
since it was exec'd. (``ru_maxrss`` is not used: Linux carries the parent's peak over fork+exec
into it, so a child of a parent that seeded a million rows reported the parent's memory.)
``rss_before_mb`` is the child's RSS just before the export starts (Django set up, the project
read; for the API runs also the URL modules and what they import, as in a web worker).

Usage: .venv/bin/python benchmarks/bench_export.py [--judgments 1000000] [--reuse] [--only raw,labels,...]
Targets: exports >= 100,000 judgments/s with peak RSS < 300 MB; pull >= 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import RESULTS, recreate_postgres_db, table, write_result  # noqa: E402

DB_NAME = "vidjudge_bench_export"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
#: kind, format, via, question, aggregation
EXPORTS = [
    ("raw", "jsonl", "service", "final_verdict", "majority"),
    ("raw", "parquet", "service", "final_verdict", "majority"),
    ("raw", "csv", "service", "final_verdict", "majority"),
    ("raw", "jsonl", "api", "final_verdict", "majority"),
    ("labels", "jsonl", "service", "all", "majority"),
    ("labels", "parquet", "service", "all", "majority"),
    ("preference", "jsonl", "service", "final_verdict", "majority"),
    ("preference", "parquet", "service", "final_verdict", "majority"),
    ("preference", "jsonl", "api", "final_verdict", "majority"),
    ("preference", "jsonl", "service", "final_verdict", "dawid_skene"),
    ("labels", "parquet", "service", "all", "dawid_skene"),
]


def _django() -> None:
    os.environ.update({"DATABASE_URL": DB_URL, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING",
                       "DEBUG": "false", "SECRET_KEY": "bench-only-secret", "SECURE_SSL_REDIRECT": "false",
                       "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost"})
    import django

    django.setup()


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def child_export(kind: str, fmt: str, via: str, question: str, aggregation: str, out: str) -> dict:
    _django()
    from annotation.models import Project

    project = Project.objects.get(name="bench export")
    if via == "api":
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - a web worker has its URL modules (and their imports) loaded
    baseline = _status_mb("VmRSS")
    options = {"kind": kind, "format": fmt, "question": question, "aggregation": aggregation}
    start = time.perf_counter()
    size = 0
    if via == "api":
        from django.conf import settings
        from django.test import Client

        settings.EXPORT_SYNC_MAX_JUDGMENTS = 10**9  # stream it: this run measures the streaming path
        from rest_framework.authtoken.models import Token

        token = Token.objects.get(user__username="bench-manager").key
        client = Client(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.get(f"/api/v1/projects/{project.pk}/exports/", options)
        assert response.status_code == 200, response.status_code
        with open(out, "wb") as target:
            for chunk in response.streaming_content:
                target.write(chunk)
                size += len(chunk)
    else:
        from annotation.services.exports import export_spec, export_write

        spec = export_spec(project=project, options=options)
        with open(out, "wb") as target:
            size = export_write(project=project, spec=spec, target=target)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": baseline}


def child_pull(page_size: int) -> dict:
    _django()
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from annotation.models import Project

    project = Project.objects.get(name="bench export")
    token = Token.objects.get(user__username="bench-manager").key
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/v1/projects/{project.pk}/judgments/"
    params: dict[str, object] = {"page_size": page_size}
    rows = pages = 0
    last = 0
    start = time.perf_counter()
    while True:
        body = client.get(url, params).json()
        results = body["results"]
        if results:
            assert results[0]["id"] > last
            last = results[-1]["id"]
        rows += len(results)
        pages += 1
        params["cursor"] = body["next_cursor"]
        if not body["has_more"]:
            break
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "pages": pages, "peak_rss_mb": _peak_rss_mb()}


def _run_child(*args: str) -> dict:
    """Run this file as a child and return its JSON line; peak RSS is the child's own."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def _count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return lines - (1 if fmt == "csv" else 0)


def _machine_text() -> dict:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"nproc": run(["nproc"]), "free_h": run(["free", "-h"]), "loadavg": run(["cat", "/proc/loadavg"]),
            "postgres": run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"])}


def _merged_runs(new: list[dict], judgments: int) -> list[dict]:
    """With ``--only``: the previous results' runs (same number of judgments) that were not run
    again, in their order, with the new ones in their place or after them."""
    try:
        previous = json.loads((RESULTS / "export.json").read_text())
    except (OSError, ValueError):
        return new
    if previous.get("judgments") != judgments:
        return new
    fresh = {run["what"]: run for run in new}
    merged = [fresh.pop(run["what"], run) for run in previous.get("runs", [])]
    return merged + list(fresh.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database.")
    parser.add_argument("--only", default="", help="Comma-separated kinds to run (raw, labels, preference, pull); "
                        "the other runs of benchmarks/results/export.json are kept.")
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_pull(int(rest[0])) if kind == "pull" else child_export(kind, *rest)
        print(json.dumps(result))
        return

    seed_seconds = None
    if not args.reuse:
        recreate_postgres_db(DB_NAME)
        _django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from benchmarks._seed_judgments import seed

        start = time.perf_counter()
        info = seed(judgments=args.judgments, log=lambda m: print(m, flush=True))
        seed_seconds = time.perf_counter() - start
        print(f"seeded in {seed_seconds:.1f} s: {info}", flush=True)
    n = args.judgments

    rows, results = [], []
    load_start = Path("/proc/loadavg").read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="vidjudge-bench-export-"))
    only = {k for k in args.only.split(",") if k}
    for kind, fmt, via, question, aggregation in EXPORTS:
        if only and kind not in only:
            continue
        out = work / f"{kind}-{via}.{fmt}"
        r = _run_child(kind, fmt, via, question, aggregation, str(out))
        written = _count_rows(out, fmt)
        if kind == "raw":
            assert written == n, (kind, fmt, written, n)
        rate = n / r["seconds"]
        what = f"export {kind} {question} {aggregation} {fmt} ({via})"
        entry = {"what": what, "judgments": n, "rows_written": written, **r, "judgments_per_s": rate,
                 "loadavg_start": load_start}
        results.append(entry)
        rows.append((what, f"{n:,}", f"{written:,}", f"{r['seconds']:.2f}", f"{rate:,.0f}",
                     f"{r['bytes'] / 2**20:,.0f}", f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}"))
        out.unlink()
        print(rows[-1], flush=True)
    if not only or "pull" in only:
        pull = _run_child("pull", str(args.page_size))
        assert pull["rows"] == n, pull
        rate = pull["rows"] / pull["seconds"]
        results.append({"what": f"pull judgments API ({args.page_size}/page)", "judgments": n, **pull,
                        "rows_per_s": rate})
        rows.append((f"pull API, {args.page_size}/page, {pull['pages']} pages", f"{n:,}", f"{pull['rows']:,}",
                     f"{pull['seconds']:.2f}", f"{rate:,.0f}", "-", "-", f"{pull['peak_rss_mb']:.0f}"))
    work.rmdir()

    print()
    print(table(rows, ("run", "judgments", "rows out", "seconds", "judgments/s", "MB", "RSS before MB",
                       "peak RSS MB")))
    if only:
        results = _merged_runs(results, n)
    path = write_result("export", {"judgments": n, "seed_seconds": seed_seconds, "runs": results,
                                   "machine_text": _machine_text(), "loadavg_start": load_start})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
