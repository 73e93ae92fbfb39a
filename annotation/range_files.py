"""Serving media with HTTP Range support (browsers need 206 to seek), after the caller's
permission check: from MEDIA_ROOT by Django itself or by nginx (``X-Accel-Redirect``), or, with
``MEDIA_STORAGE=s3``, by a redirect to a short-lived presigned URL of the bucket."""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from annotation.storage import media_is_remote, media_key_check, media_signed_url

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 256 * 1024


def media_path(relative: str) -> Path:
    """The absolute path of ``relative`` under MEDIA_ROOT; Http404 if it escapes the root.

    Symlinks are resolved first, so a link inside MEDIA_ROOT pointing outside is refused too.
    """
    root = Path(settings.MEDIA_ROOT).resolve()
    if not relative or "\x00" in relative:
        raise Http404("no such file")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or candidate == root or not candidate.is_file():
        raise Http404("no such file")
    return candidate


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """Parse a single ``bytes=`` range against ``size``.

    Returns (start, end) inclusive, None when the header should be ignored (absent, malformed
    or several ranges: the whole file is sent), or "unsatisfiable".
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored, the whole file is sent
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def _redirect_to_bucket(relative: str, content_type: str | None) -> HttpResponse:
    """302 to a presigned URL of ``relative``'s object; the browser's Range requests then go
    to the bucket. The redirect itself is never cached (the URL expires)."""
    try:
        key = media_key_check(relative)
    except ValueError:
        raise Http404("no such file") from None
    response = HttpResponseRedirect(media_signed_url(key=key, content_type=content_type))
    response["Cache-Control"] = "private, no-store"
    return response


def serve_media(request: HttpRequest, relative: str, *, content_type: str | None = None) -> HttpResponse:
    """Send ``relative`` (a key under MEDIA_ROOT) honouring Range; or hand it to nginx.

    With ``MEDIA_STORAGE=s3`` a file that is not in the local MEDIA_ROOT (which is all of them
    but files a process rendered locally, such as the placeholder clip) is answered with a
    redirect to the bucket. Call only after the permission check.
    """
    if media_is_remote():
        try:
            path = media_path(relative)
        except Http404:
            return _redirect_to_bucket(relative, content_type)
    else:
        path = media_path(relative)
    content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if settings.MEDIA_SERVE == "nginx":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX + str(
            path.relative_to(Path(settings.MEDIA_ROOT).resolve())
        )
        # nginx keeps this from our answer when it serves the file (and adds Accept-Ranges itself).
        response["Cache-Control"] = "private, max-age=3600"
        return response
    size = os.stat(path).st_size
    parsed = parse_range(request.headers.get("Range", ""), size)
    if parsed == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif parsed is None:
        response = StreamingHttpResponse(_read(path, 0, size), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = parsed
        length = end - start + 1
        response = StreamingHttpResponse(_read(path, start, length), status=206, content_type=content_type)
        response["Content-Length"] = str(length)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response
