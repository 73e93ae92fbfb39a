"""Middleware for limits and failures that every request shares.

- ``RequestSizeLimitMiddleware`` refuses a body larger than its limit with 413 before any of
  it is read (Django limits form fields, but a multipart file or a JSON body read by DRF's
  parsers has no limit of its own).
- ``DatabaseUnavailableMiddleware`` answers 503 with a clear message, at once, when the
  database cannot be reached (restarting, down), instead of a generic 500; the connection is
  then dropped and the next request connects again, so the process recovers by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

#: Room for the multipart envelope (boundaries, part headers, small fields) around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: PostgreSQL SQLSTATE classes that mean "the server is not there": 08 connection exception,
#: 57P01-57P03 admin/crash shutdown and "cannot connect now" (starting up or shutting down).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
DATABASE_RETRY_AFTER_SECONDS = 5


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def request_body_limit(request: HttpRequest) -> tuple[int, str]:
    """(largest allowed body in bytes, the setting that sets it) for ``request``.

    Multipart bodies carry uploaded import files: IMPORT_MAX_UPLOAD_BYTES plus the envelope.
    Every other body (JSON, forms) is held in memory: DATA_UPLOAD_MAX_MEMORY_SIZE.
    """
    if request.content_type == "multipart/form-data":
        return settings.IMPORT_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES, "IMPORT_MAX_UPLOAD_BYTES"
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE"


class RequestSizeLimitMiddleware:
    """413 for a request whose Content-Length is over :func:`request_body_limit`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django then reads no body at all
        limit, setting = request_body_limit(request)
        if length > limit:
            message = f"The request body is {length} bytes; the limit is {limit} bytes ({setting})."
            if _wants_json(request):
                return JsonResponse({"detail": message, "code": "too_large"}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (not a query's own error).

    A failed connect has no SQLSTATE; a dropped connection is an InterfaceError or has none
    either; a server shutting down or starting up reports class 08 or 57P0x. A deadlock or a
    constraint violation is not "unavailable" and is left to the usual error handling.
    """
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    code = getattr(exc.__cause__, "pgcode", None) or getattr(exc, "pgcode", None)
    if code is None:
        return True
    return str(code).startswith(_UNAVAILABLE_SQLSTATES)


class DatabaseUnavailableMiddleware:
    """503 with Retry-After when a view fails because the database cannot be reached."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        message = "The database is unavailable for a moment; please try again in a few seconds."
        if _wants_json(request):
            response: HttpResponse = JsonResponse({"detail": message, "code": "database_unavailable"}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
