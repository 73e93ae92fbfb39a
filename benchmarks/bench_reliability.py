"""Reliability scenarios on loopback: load, Redis outage, PostgreSQL restart, worker killed.

    .venv/bin/python benchmarks/bench_reliability.py                 # all four (about 6 minutes)
    .venv/bin/python benchmarks/bench_reliability.py load postgres   # some of them
    .venv/bin/python benchmarks/bench_reliability.py --quick         # smaller, for a smoke check

- ``load``: 200 simulated raters (aiohttp, this process) for 60 s against gunicorn (gthread)
  and the machine's PostgreSQL: zero 5xx and zero unexpected answers, every 2xx submission
  in the database exactly once, no pair over its overlap, lease counters consistent;
- ``redis``: a private Redis (broker and cache) is stopped for 30 s while raters judge and
  metric and media work is enqueued: raters see no error, the enqueue and an upload succeed
  (the messages wait in the outbox), and the work is done once Redis is back;
- ``postgres``: a private PostgreSQL cluster is restarted, then stopped for 10 s, under raters:
  requests fail fast with 503 and succeed again afterwards, gunicorn never restarted;
- ``worker-kill``: a metrics worker is SIGKILLed mid-batch (its pool process; then the whole
  worker, restarted): every video is computed, and no video ever holds a partial score set.

Each scenario runs in a process of its own with its own databases (named from ``--db-prefix``)
and private servers on free ports, bounded in time, cleaned up in ``finally`` blocks. Prints a
table and writes ``benchmarks/results/reliability.json``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "reliability.json"
NAMES = ("load", "redis", "postgres", "worker-kill")
TIMEOUTS = {"load": 600, "redis": 600, "postgres": 400, "worker-kill": 600}  # seconds per scenario, bounded


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer raters and shorter phases (a smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="logs and private servers (default: a temp dir)")
    parser.add_argument("--db-prefix", default="vidjudge_reliability")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--one", choices=NAMES, help=argparse.SUPPRESS)  # internal: run one, in this process
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    return parser


def scenario_args(name: str, quick: bool, base: argparse.Namespace) -> argparse.Namespace:
    """The parameters of one scenario (full run, or --quick)."""
    common = {"db_prefix": base.db_prefix, "keep_db": base.keep_db}
    full = {
        "load": {"raters": 200, "seconds": 60, "pairs": 30_000, "workers": 3, "threads": 8},
        "redis": {"raters": 30, "pairs": 3000, "workers": 2, "threads": 4, "outage_at": 5, "outage_seconds": 30,
                  "after_seconds": 10, "catch_up_timeout": 180},
        "postgres": {"raters": 30, "pairs": 3000, "workers": 2, "threads": 4, "down_seconds": 10,
                     "after_seconds": 10},
        "worker-kill": {"videos": 8, "clip_seconds": 2.0, "visibility_timeout": 15},
    }[name]
    if quick:
        full.update({"load": {"raters": 50, "seconds": 10, "pairs": 3000},
                     "redis": {"outage_seconds": 10, "after_seconds": 5},
                     "postgres": {"down_seconds": 4, "after_seconds": 5},
                     "worker-kill": {"videos": 6}}[name])
    return argparse.Namespace(**common, **full)


def run_one(name: str, args: argparse.Namespace) -> int:
    """Run scenario ``name`` here and write its result to ``args.json``."""
    sys.path.insert(0, str(ROOT))
    # A SIGTERM (the parent's timeout) unwinds through the finally blocks that stop everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from benchmarks.reliability.scenarios import SCENARIOS

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"vj-rel-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        result = SCENARIOS[name](scenario_args(name, args.quick, args), workdir)
    except Exception as exc:  # a scenario that could not run is a failed check, with the reason
        import traceback

        result = {"scenario": name, "ok": False, "checks": {"the scenario ran": False},
                  "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["workdir"] = str(workdir)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if result["ok"] else 1


def spawn(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one scenario in a child process (bounded; killed with its group on timeout)."""
    out = workdir / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--json", str(out),
           "--workdir", str(workdir / name), "--db-prefix", args.db_prefix]
    cmd += ["--quick"] * args.quick + ["--keep-db"] * args.keep_db
    child = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        child.wait(timeout=TIMEOUTS[name])
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # anything of its group still running
        cleanup_leftovers(workdir / name)
    if out.exists():
        return json.loads(out.read_text())
    return {"scenario": name, "ok": False, "checks": {"the scenario finished in time": False},
            "error": f"no result after {TIMEOUTS[name]} s (exit {child.returncode})"}


def cleanup_leftovers(workdir: Path) -> None:
    """Stop what a killed scenario left behind: the process groups and the private cluster it
    recorded under its workdir (nothing when it cleaned up itself)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.reliability.procs import destroy_recorded_postgres, kill_recorded_groups

    kill_recorded_groups(workdir)
    destroy_recorded_postgres(workdir)


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_rater_loop import machine as rater_machine

    info = rater_machine()
    with contextlib.suppress(OSError):
        info["loadavg_before"] = Path("/proc/loadavg").read_text().split()[:3]
    return info


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"\nmachine: {m['nproc']} cores, {m['cpu']}; load average before: {m.get('loadavg_before')}")
    for result in report["scenarios"]:
        mark = "PASS" if result["ok"] else "FAIL"
        print(f"\n== {result['scenario']}: {mark} ({result.get('wall_s')} s)")
        if result.get("error"):
            print(f"   error: {result['error']}")
        for check, passed in result.get("checks", {}).items():
            print(f"   [{'x' if passed else ' '}] {check}")
        load = result.get("load")
        if load:
            print(f"   {load['requests']} requests in {load['seconds']} s ({load['requests_per_s']}/s), "
                  f"{load['judgments_created']} judgments ({load['judgments_per_s']}/s), {load['skips']} skips, "
                  f"{load['repeats_ok']} repeated submits; outage answers {load['outage_answers'] or 'none'}")
            print(f"   {'call':<8} {'n':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
            for call, c in load["calls"].items():
                if c["n"]:
                    print(f"   {call:<8} {c['n']:>7} {c['per_s']:>7} {c.get('p50_ms', ''):>8} "
                          f"{c.get('p99_ms', ''):>8} {c.get('max_ms', ''):>8}  {c['status']}")
        for key in ("outage", "recovered_s_after_start", "work_done_s_after_redis_returned", "stored"):
            if result.get(key) is not None:
                print(f"   {key}: {json.dumps(result[key], default=str)}")
        for r in result.get("rounds", []):
            at_kill = sorted(r["at_kill"].values())
            print(f"   killed {r['killed']}: mid-batch {r['mid_batch']}, scores per video at the kill {at_kill}, "
                  f"completed {r['completed']} {r['completed_s_after_kill']} s after it, scores {r['scores']}")


def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    unknown = [n for n in args.scenarios if n not in NAMES]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if args.one:
        return run_one(args.one, args)
    names = args.scenarios or list(NAMES)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vj-rel-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"benchmark": "reliability", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "machine": machine(), "quick": args.quick, "scenarios": []}
    for name in names:
        print(f"running {name} ...", flush=True)
        report["scenarios"].append(spawn(name, args, workdir))
    report["ok"] = all(r["ok"] for r in report["scenarios"])
    if args.out == RESULTS and RESULTS.exists() and set(names) != set(NAMES):
        # A partial run updates its scenarios in the recorded file and keeps the others.
        previous = json.loads(RESULTS.read_text())
        kept = [r for r in previous.get("scenarios", []) if r["scenario"] not in names]
        report["scenarios"] = kept + report["scenarios"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nwrote {args.out}  (logs under {workdir})")
    return 0 if all(r["ok"] for r in report["scenarios"] if r["scenario"] in names) else 1


if __name__ == "__main__":
    sys.exit(main())
