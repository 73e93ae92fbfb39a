from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the suite must run against the real PostgreSQL and Redis, never a fallback."""
    if os.environ.get("CI") == "true":
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.exit(f"CI=true but the tests would use {engine}, not PostgreSQL", returncode=3)
        if not settings.REDIS_URL:
            pytest.exit("CI=true but Redis at 127.0.0.1:6379 does not answer", returncode=3)


@pytest.fixture(autouse=True)
def media_dirs(settings, tmp_path: Path):
    """Every test gets its own MEDIA_ROOT and import root, so files never leak between tests."""
    media = tmp_path / "media"
    imports = tmp_path / "imports"
    media.mkdir()
    imports.mkdir()
    settings.MEDIA_ROOT = media.resolve()
    settings.IMPORT_ROOTS = [imports.resolve()]
    yield
    shutil.rmtree(media, ignore_errors=True)
