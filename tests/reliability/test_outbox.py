"""The task outbox (config.tasks, outbox/): a broker outage neither fails the request that
enqueues nor loses its work; a real Celery worker relays what was kept once Redis answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from annotation.models import Membership, Video
from config.celery import app
from outbox.models import OutboxMessage
from tests import media_fixtures as mf
from tests.deploy.helpers import broker_url, media_worker_run, redis_up
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker(settings):
    """Tasks go to a broker (as in production); ``broker.use(url)`` points it somewhere."""
    if connection.vendor != "postgresql" or not redis_up(broker_url()):
        pytest.skip("needs PostgreSQL and Redis (CI always has both)")
    import redis

    redis.Redis.from_url(broker_url()).flushdb()
    settings.TASKS_IN_PROCESS = False
    previous = app.conf.broker_url

    class Broker:
        url = broker_url()

        @staticmethod
        def use(url: str) -> None:
            _reset_connections()  # no connection to the previous broker is reused
            app.conf.broker_url = url

        @staticmethod
        def queued(queue: str) -> list[dict]:
            client = redis.Redis.from_url(broker_url())
            return [json.loads(m) for m in client.lrange(queue, 0, -1)]

    yield Broker
    _reset_connections()
    app.conf.broker_url = previous


def _reset_connections() -> None:
    """Forget Celery's cached pools: the next send builds them for the current broker URL
    (kombu keeps one pool per URL, so going back to a URL finds its pool again)."""
    app._pool = None  # noqa: SLF001 - Celery caches its connection pool here
    app.amqp._producer_pool = None  # noqa: SLF001 - and its producer pool here


@pytest.mark.django_db(transaction=True)
def test_enqueue_with_broker_down_keeps_the_message_and_the_commit(broker):
    from config.tasks import enqueue_on_commit
    from metrics.tasks import metrics_compute_batch

    broker.use(DOWN)
    project = ProjectFactory()
    with transaction.atomic():
        ProjectFactory(name="made in the same transaction")
        enqueue_on_commit(metrics_compute_batch, [1, 2], None, False, False)
    # The commit went through, the message is kept with the reason it was not sent.
    assert project.__class__.objects.filter(name="made in the same transaction").exists()
    kept = OutboxMessage.objects.get()
    assert (kept.task, kept.args, kept.attempts) == ("metrics.tasks.metrics_compute_batch", [[1, 2], None, False,
                                                                                           False], 1)
    assert kept.last_error  # e.g. "OperationalError: Error 111 connecting to 127.0.0.1:1. Connection refused."
    # A rolled-back transaction leaves nothing to send.
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(metrics_compute_batch, [3], None, False, False)
        raise RuntimeError("rolled back")
    assert OutboxMessage.objects.count() == 1

    from outbox.services import outbox_relay

    assert outbox_relay(min_age_seconds=0) == 0  # still down: kept, one more attempt counted
    assert OutboxMessage.objects.get().attempts == 2
    broker.use(broker.url)
    assert outbox_relay(min_age_seconds=0) == 1
    assert OutboxMessage.objects.count() == 0
    queued = broker.queued("metrics")
    assert [m["headers"]["task"] for m in queued] == ["metrics.tasks.metrics_compute_batch"]
    assert queued[0]["headers"]["argsrepr"] == "[[1, 2], None, False, False]"


@pytest.mark.django_db(transaction=True)
def test_sent_messages_leave_no_row(broker):
    from config.tasks import enqueue_many_on_commit
    from metrics.tasks import metrics_compute_batch

    broker.use(broker.url)
    with transaction.atomic():
        enqueue_many_on_commit(metrics_compute_batch, [([i], None, False, False) for i in range(5)])
    assert OutboxMessage.objects.count() == 0
    assert len(broker.queued("metrics")) == 5


@pytest.mark.django_db(transaction=True)
def test_upload_during_an_outage_answers_201_and_a_worker_catches_up(broker, settings, tmp_path):
    """A manifest upload while Redis is unreachable: the request succeeds, its media work
    waits in the outbox; a real worker started once Redis answers relays and does it."""
    root = Path(settings.IMPORT_ROOTS[0])
    good = mf.make_h264_mp4(root / "good.mp4")
    project = ProjectFactory()
    manager = UserFactory()
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    api = APIClient()
    api.force_authenticate(manager)
    broker.use(DOWN)
    from django.core.files.uploadedfile import SimpleUploadedFile

    manifest = f"prompt_id,prompt,generator,video\np1,a cat,G,{good}\n".encode()
    response = api.post(f"/api/v1/projects/{project.pk}/imports/", {"file": SimpleUploadedFile("m.csv", manifest)},
                        format="multipart")
    assert response.status_code == 201, response.content
    video = Video.objects.get(project=project)
    assert video.status == Video.STATUS_PENDING
    assert list(OutboxMessage.objects.values_list("task", "args")) == [
        ("annotation.tasks.video_process_task", [video.pk])
    ]

    broker.use(broker.url)  # Redis is back; nothing sent yet: only the worker's relay will

    def processed() -> bool:
        video.refresh_from_db()
        return video.status != Video.STATUS_PENDING

    output = media_worker_run(
        db=connection.settings_dict,
        broker=broker.url,
        media_root=settings.MEDIA_ROOT,
        import_root=root,
        until=processed,
        extra_env={"METRICS_ENQUEUE_ON_READY": "false", "OUTBOX_RELAY_MIN_AGE_SECONDS": "0", "REDIS_URL": ""},
    )
    assert video.status == Video.STATUS_READY, output[-3000:]
    assert OutboxMessage.objects.count() == 0
