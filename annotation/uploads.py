"""Checks on an uploaded import file (manifest, judgments, gold, scores) before any row is read,
and the answer an upload endpoint gives with the finished import's report.

Every upload endpoint's serializer is an :class:`UploadSerializer`, which calls
:func:`upload_check`: the file must be at
most ``IMPORT_MAX_UPLOAD_BYTES`` (413 otherwise), be named ``.csv``, ``.jsonl``, ``.ndjson``
or ``.json``, and look like UTF-8 text: no NUL byte, no known binary signature (a
spreadsheet, an archive, an image, ...), valid UTF-8 in its first bytes (400 otherwise,
with the reason). The request as a whole was already bounded by
``config.middleware.RequestSizeLimitMiddleware`` before it was read.
"""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from annotation.models import ImportJob
from annotation.selectors.imports import import_report

ALLOWED_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
SNIFF_BYTES = 64 * 1024
#: Leading bytes of formats people upload by mistake, and what to call them in the error.
BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx or .docx file is one; export the sheet as CSV)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls; export the sheet as CSV)"),
    (b"\x1f\x8b", "gzip-compressed (decompress it first)"),
    (b"BZh91AY&SY", "bzip2-compressed (decompress it first)"),
    (b"\xfd7zXZ\x00", "xz-compressed (decompress it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x7fELF", "an executable"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF89a", "a GIF image"),
    (b"GIF87a", "a GIF image"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"),
)


#: The OpenAPI answer every upload endpoint documents for a file over the limit.
TOO_LARGE = OpenApiResponse(
    description="The file (or the whole request) is over IMPORT_MAX_UPLOAD_BYTES: {detail, code: too_large}."
)


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The file is too large."


def _head(upload: Any, size: int) -> bytes:
    upload.seek(0)
    head = upload.read(size)
    upload.seek(0)
    return head


def upload_content_problem(head: bytes) -> str | None:
    """Why ``head`` (a file's first bytes) is not CSV or JSON Lines text, or None."""
    for signature, what in BINARY_SIGNATURES:
        if head.startswith(signature):
            return f"the file is {what}, not CSV or JSON Lines text"
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"the file is binary, not CSV or JSON Lines text (a NUL byte at byte {nul})"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)  # a character cut at the end of the sample is fine
    except UnicodeDecodeError as exc:
        return f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    return None


def upload_check(*, upload: Any, max_bytes: int | None = None) -> Any:
    """Return ``upload`` when it may be imported; raise UploadTooLarge (413) or a
    ValidationError (400, for the ``file`` field) saying what is wrong."""
    limit = settings.IMPORT_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    name = upload.name or ""
    if upload.size > limit:
        raise UploadTooLarge(
            f"The file {name!r} is {upload.size} bytes; the limit is {limit} bytes (IMPORT_MAX_UPLOAD_BYTES)."
        )
    if "\x00" in name:
        raise serializers.ValidationError("the file name contains a NUL character")
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        raise serializers.ValidationError(f"expected a {', '.join(ALLOWED_SUFFIXES)} file, got {name!r}")
    problem = upload_content_problem(_head(upload, SNIFF_BYTES))
    if problem:
        raise serializers.ValidationError(problem)
    return upload


# No docstring: drf-spectacular would publish it as every subclass's schema description.
# An import file, checked by upload_check; subclasses give ``file`` its help text and add options.
class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()

    def validate_file(self, value):  # noqa: ANN001, ANN201 - an UploadedFile
        return upload_check(upload=value)  # size (413), name and content (400)


def import_job_response(*, job: ImportJob) -> Response:
    """The import's report: 201 when its rows were read (bad rows listed), 400 when the file was refused."""
    code = status.HTTP_201_CREATED if job.status == ImportJob.STATUS_DONE else status.HTTP_400_BAD_REQUEST
    return Response(import_report(job=job), status=code)
