"""``GET /healthz``: a cheap liveness and readiness probe for containers and load balancers.

It answers ``{"status": "ok", "database": "ok"}`` (200) after one ``SELECT 1`` on the default
database, or ``{"status": "error", "database": "unavailable"}`` (503) when that fails; the reason
goes to the log, not to the caller. Nothing else is checked: a probe that fails on a slow broker
would restart healthy web processes.

It is answered by :class:`HealthCheckMiddleware`, first in ``MIDDLEWARE``, before host validation
and the HTTPS redirect: probes come over plain HTTP from inside the container or the proxy's
network, with a ``Host`` header (``127.0.0.1:8000``, ``web:8000``) that ``ALLOWED_HOSTS`` rightly
refuses. The answer uses nothing from the request, so skipping those checks exposes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


def health_report(*, using: str = "default") -> tuple[bool, dict[str, str]]:
    """(healthy, body): whether one ``SELECT 1`` on the ``using`` database succeeds."""
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("health check: the database did not answer")
        return False, {"status": "error", "database": "unavailable"}
    return True, {"status": "ok", "database": "ok"}


def healthz(request: HttpRequest) -> HttpResponse:
    healthy, body = health_report()
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers ``GET``/``HEAD /healthz`` before any other middleware runs (see the module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
