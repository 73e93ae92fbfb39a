"""The Celery app. Queues: ``media`` (probe, transcode, poster) and ``metrics``."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vidjudge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("media"), Queue("metrics"))
app.autodiscover_tasks()
