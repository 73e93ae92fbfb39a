"""Private servers and processes for the reliability scenarios, on loopback, cleaned up always.

Every scenario that stops a service starts its own copy of it on a free port under a
temporary folder: a ``redis-server``, a PostgreSQL cluster (``initdb`` + ``pg_ctl``; as the
``postgres`` user through ``runuser`` when running as root, since initdb refuses root). The
machine's shared PostgreSQL and Redis are never stopped. Child processes get SIGKILL when the
scenario process dies (``PR_SET_PDEATHSIG``), and :class:`Processes` stops every one of them in
a ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, *, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if not alive():
                raise RuntimeError(f"the process for port {port} exited") from None
            time.sleep(0.1)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout} s")


def _own_group() -> None:
    os.setpgid(0, 0)


def _own_group_dying_with_parent() -> None:
    """In the child, before exec: its own process group, and SIGKILL when its parent *thread*
    ends (PR_SET_PDEATHSIG follows the thread that forked: only used from the main thread)."""
    os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return ""


class Processes:
    """Starts processes (each in its own group, dying with us) and stops them all on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}
        # Every process group started, written down for whoever must clean up after a kill -9.
        self.record = logs.parent / "process-groups"

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        in_main = threading.current_thread() is threading.main_thread()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_own_group_dying_with_parent if in_main else _own_group)  # noqa: PLW1509
        proc.log = log  # type: ignore[attr-defined]
        self.running[name] = proc
        with self.record.open("a") as out:
            out.write(f"{proc.pid} {cmd[0]}\n")
        return proc

    def signal(self, name: str, sig: int, *, group: bool = True) -> None:
        proc = self.running[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    os.kill(proc.pid, sig)

    def stop(self, name: str, *, timeout: float = 20) -> int | None:
        proc = self.running.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # leftovers of the group (pool children)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.log.close()  # type: ignore[attr-defined]
        return proc.returncode

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop_all(self) -> None:
        for name in list(self.running)[::-1]:
            self.stop(name)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()


# --- Redis --------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own, with an append-only file so queued messages survive a stop
    (as production must be configured: a broker that forgets its queue on restart loses work)."""

    def __init__(self, procs: Processes, workdir: Path) -> None:
        self.procs = procs
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        cmd = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
               "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"]
        proc = self.procs.start("redis", cmd, os.environ.copy())
        wait_port(self.port, timeout=20, alive=lambda: proc.poll() is None)

    def stop(self) -> None:
        """A clean stop (SIGTERM: Redis syncs its append-only file and exits)."""
        self.procs.stop("redis")

    def llen(self, key: str) -> int:
        import redis

        return int(redis.Redis.from_url(self.url(0), socket_timeout=2).llen(key))


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return path


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port (trust auth, loopback only, no fsync).

    Runs as the ``postgres`` user when we are root (initdb refuses root), in a folder that user
    owns. ``stop``/``start``/``restart`` go through pg_ctl; ``destroy`` stops it at once
    (immediate mode) and removes the folder, and is safe to call twice.
    """

    def __init__(self, *, logs: Path, record: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vj-pg-"))
        # Where the folder is written down, so that whoever kills this process can clean up.
        self.record = record
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(str(self.root))
        self.data = self.root / "data"
        # The server's log stays in its own folder (the postgres user may not reach ``logs``,
        # e.g. under pytest's private temp dir); ``destroy`` copies it to ``logs``.
        self.log = self.root / "postgres.log"
        self.logs = logs
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            import pwd

            entry = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must reach its data folder
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self._as, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-instructions", timeout=120)

    def _ctl(self, action: str, *extra: str, timeout: float = 60) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t",
                  str(int(timeout)), *extra, action, timeout=timeout + 10)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._ctl("restart", "-m", mode)

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def destroy(self) -> None:
        with contextlib.suppress(OSError):
            self.logs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log, self.logs / "postgres.log")
        _destroy_cluster(self.root)
        self.record.unlink(missing_ok=True)


def _destroy_cluster(root: Path) -> None:
    data = root / "data"
    if (data / "postmaster.pid").exists():
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with contextlib.suppress(Exception):
            subprocess.run([*runner, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30",
                            "stop"], timeout=40, check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def kill_recorded_groups(workdir: Path) -> None:
    """SIGKILL the process groups a killed scenario recorded (those still running as recorded)."""
    record = workdir / "process-groups"
    if not record.exists():
        return
    for line in record.read_text().splitlines():
        pid, _, program = line.partition(" ")
        if pid.isdigit() and Path(program).name in cmdline(int(pid)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
    record.unlink(missing_ok=True)


def destroy_recorded_postgres(workdir: Path) -> None:
    """Stop and remove the private cluster recorded under ``workdir`` (by a scenario that was
    killed before its own cleanup ran); nothing when there is none."""
    record = workdir / "postgres-root"
    if record.exists():
        root = Path(record.read_text().strip())
        if root.name.startswith("vj-pg-"):
            _destroy_cluster(root)
        record.unlink(missing_ok=True)


# --- the app ------------------------------------------------------------------------------


def gunicorn_cmd(port: int, *, workers: int, threads: int) -> list[str]:
    return [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
            "--keep-alive", "30", "--backlog", "1024", "--timeout", "60", "--graceful-timeout", "10",
            "--log-level", "warning"]


def celery_cmd(*, queues: str, pool: str = "solo", concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", pool, "-c",
            str(concurrency), "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]


def manage(args: list[str], env: dict[str, str], *, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
