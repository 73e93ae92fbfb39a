"""Imported by every Celery worker (autodiscovery): installs the outbox relay step."""

from config.celery import app
from outbox.worker import install

install(app)
