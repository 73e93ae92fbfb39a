"""A real Celery worker on the real Redis broker processes media queued on commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from annotation.models import Video
from annotation.services.imports import manifest_import
from config.celery import app
from tests import media_fixtures as mf
from tests.factories import ProjectFactory

BROKER = "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parents[2]


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(BROKER, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_media_worker_over_redis(settings, tmp_path):
    if connection.vendor != "postgresql" or not _redis_up():
        pytest.skip("needs PostgreSQL and Redis (CI always has both)")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    settings.TASKS_IN_PROCESS = False
    app.conf.broker_url = BROKER
    root = Path(settings.IMPORT_ROOTS[0])
    good = mf.make_h264_mp4(root / "good.mp4")
    webm = mf.make_vp9_webm(root / "v.webm")
    bad = mf.make_text_file(root / "bad.mp4")
    project = ProjectFactory()
    manifest = "prompt_id,prompt,generator,video\n" + "".join(
        f"p1,a cat,G{i},{path}\n" for i, path in enumerate([good, webm, bad])
    )
    import io

    job = manifest_import(project=project, file_obj=io.BytesIO(manifest.encode()), file_name="m.csv")
    assert job.created_rows == 3
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_ROOTS": str(root),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "media", "-c", "1", "--pool", "solo",
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not Video.objects.filter(project=project, status=Video.STATUS_PENDING).exists():
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
        app.conf.broker_url = ""
    statuses = dict(Video.objects.filter(project=project).values_list("generator__name", "status"))
    assert statuses == {"G0": "ready", "G1": "ready", "G2": "failed"}, output[-2000:]
    assert Video.objects.get(project=project, generator__name="G1").transcoded
