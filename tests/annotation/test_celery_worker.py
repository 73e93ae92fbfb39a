"""A real Celery worker on the real Redis broker processes media queued on commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from annotation.models import Video
from annotation.services.imports import manifest_import
from config.celery import app
from tests import media_fixtures as mf
from tests.deploy.helpers import broker_url, media_worker_run, redis_up
from tests.factories import ProjectFactory


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_media_worker_over_redis(settings, tmp_path):
    broker = broker_url()  # this run's own Redis database
    if connection.vendor != "postgresql" or not redis_up(broker):
        pytest.skip("needs PostgreSQL and Redis (CI always has both)")
    import redis

    redis.Redis.from_url(broker).flushdb()
    settings.TASKS_IN_PROCESS = False
    app.conf.broker_url = broker
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
    try:
        output = media_worker_run(
            db=connection.settings_dict,
            broker=broker,
            media_root=settings.MEDIA_ROOT,
            import_root=root,
            until=lambda: not Video.objects.filter(project=project, status=Video.STATUS_PENDING).exists(),
        )
    finally:
        app.conf.broker_url = ""
    statuses = dict(Video.objects.filter(project=project).values_list("generator__name", "status"))
    assert statuses == {"G0": "ready", "G1": "ready", "G2": "failed"}, output[-2000:]
    assert Video.objects.get(project=project, generator__name="G1").transcoded
