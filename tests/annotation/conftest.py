"""Fixtures shared by the annotation tests."""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.services import assignments as assignments_service


@pytest.fixture(params=["postgresql", "portable"])
def impl(request, monkeypatch):
    """Run the test with the PostgreSQL statements or with the portable ORM path (what SQLite runs)."""
    if request.param == "postgresql" and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(assignments_service, "USE_POSTGRES_STATEMENTS", request.param == "postgresql")
    return request.param
