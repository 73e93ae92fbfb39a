"""Test settings: the real PostgreSQL and Redis when reachable (CI: always), else SQLite."""

import os
import socket

os.environ.setdefault("DEBUG", "true")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if not os.environ.get("DATABASE_URL") and _answers("127.0.0.1", 5432):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/vidjudge"
if not os.environ.get("REDIS_URL") and _answers("127.0.0.1", 6379):
    # TEST_REDIS_URL lets parallel runs on one machine keep to their own Redis database.
    os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, VAR_DIR  # noqa: E402

# Tasks run inline inside tests; tests that exercise a real Celery worker set their own broker.
TASKS_IN_PROCESS = True
TASKS_IN_PROCESS_MODE = "eager"
CELERY_BROKER_URL = ""
# Metrics run where a test asks for them, not whenever any test makes a video ready.
METRICS_ENQUEUE_ON_READY = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = VAR_DIR / "test-media"
IMPORT_ROOTS = [VAR_DIR / "test-imports"]
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", "test_vidjudge")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
