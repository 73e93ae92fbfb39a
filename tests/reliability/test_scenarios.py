"""The reliability scenarios of benchmarks/bench_reliability.py, run as they are recorded:

- 200 simulated raters for 60 s against gunicorn and PostgreSQL;
- a private Redis (broker and cache) stopped for 30 s under raters, with metric and media work
  enqueued before and during the outage;
- a private PostgreSQL cluster restarted, then stopped for 10 s, under raters;
- a metrics worker SIGKILLed mid-batch (pool process, then whole worker).

Each runs in its own process group with private servers on free ports (never the shared
PostgreSQL or Redis: only databases of its own on the shared PostgreSQL), bounded in time and
cleaned up even when it has to be killed. A failed check names itself and shows the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_reliability import TIMEOUTS, cleanup_leftovers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _run(name: str, tmp_path: Path) -> dict:
    if not _answers(5432):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (CI always has it)")
    if name in ("redis", "worker-kill") and not shutil.which("redis-server"):
        pytest.skip("needs redis-server")
    out = tmp_path / "result.json"
    prefix = f"{os.environ.get('TEST_DB_NAME', 'test_vidjudge')}_rel"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_reliability.py"), name, "--out", str(out),
           "--workdir", str(tmp_path), "--db-prefix", prefix]
    runner = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        output = runner.communicate(timeout=TIMEOUTS[name] + 120)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(runner.pid, signal.SIGKILL)
        output = runner.communicate()[0].decode(errors="replace")
        pytest.fail(f"{name} did not finish in time:\n{output[-3000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
        cleanup_leftovers(tmp_path / name)
    assert out.exists(), output[-3000:]
    (result,) = json.loads(out.read_text())["scenarios"]
    failed = [check for check, passed in result.get("checks", {}).items() if not passed]
    assert result["ok"] and not failed, f"{name}: failed {failed}\n{output[-4000:]}\n{json.dumps(result)[:6000]}"
    return result


def test_200_raters_for_60_s_no_error_and_every_submission_once(tmp_path):
    result = _run("load", tmp_path)
    assert result["config"]["raters"] == 200 and result["config"]["seconds"] == 60
    assert result["load"]["judgments_created"] > 0
    assert result["load"]["calls"]["skip"]["n"] > 0 and result["load"]["calls"]["repeat"]["n"] > 0
    assert result["load"]["calls"]["reload"]["n"] > 0


def test_redis_down_30_s_raters_keep_judging_and_work_resumes(tmp_path):
    result = _run("redis", tmp_path)
    assert result["outage"]["started_at_s"] - result["outage"]["stopped_at_s"] >= 30
    assert result["outage"]["queued_in_redis_at_stop"] > 0 and result["outage"]["kept_in_outbox"] > 0


def test_postgres_restart_fails_fast_and_recovers_without_restarting_gunicorn(tmp_path):
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        pytest.skip("needs PostgreSQL's initdb for a private cluster")
    result = _run("postgres", tmp_path)
    assert result["recovered_s_after_start"] is not None


def test_metrics_worker_killed_mid_batch_recomputes_with_no_partial_scores(tmp_path):
    result = _run("worker-kill", tmp_path)
    assert [r["killed"] for r in result["rounds"]] == ["pool process", "whole worker"]
