"""Where media bytes live: under MEDIA_ROOT on this machine, or in an S3-compatible bucket.

``MEDIA_STORAGE=filesystem`` (the default) keeps originals, browser copies and posters under
``MEDIA_ROOT``; every process that reads them (web, media and metrics workers) must see the same
folder. ``MEDIA_STORAGE=s3`` keeps them in a bucket through django-storages (``STORAGES["media"]``)
so that workers on other machines need no shared disk.

In both modes a file is named by its *key*: the path relative to ``MEDIA_ROOT`` that
``Video.original``/``browser``/``poster`` store (``browser/ab/<sha256>.mp4``). In s3 mode the key is
the object's name in the bucket, so the database means the same thing in both modes.

ffmpeg and the frame decoder need local files, so in s3 mode:

- the media pipeline works in a :class:`MediaWorkspace` (a scratch folder removed afterwards): it
  downloads what it must read, writes its outputs there and uploads them;
- the metrics engine reads a video through :func:`media_local_file`, which downloads it to a
  scratch file for the duration of the decode;
- the web answers a video request, after its permission check, with a redirect to a short-lived
  presigned URL (:func:`media_signed_url`); the browser's Range requests then go to the bucket.

Errors: a missing object is :class:`MediaObjectMissing` (a ``FileNotFoundError``); any other
storage failure (network, credentials, missing bucket) is raised as :class:`MediaStorageError` (an
``OSError``) so that callers treat it like a full disk: an environment problem worth a retry,
never a verdict on the video.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.storage import storages

FILESYSTEM = "filesystem"
S3 = "s3"


class MediaStorageError(OSError):
    """The bucket could not be reached or refused the request (worth retrying)."""


class MediaObjectMissing(FileNotFoundError):
    """The bucket answered that the object does not exist (retrying will not help)."""


def media_is_remote() -> bool:
    """True when media live in a bucket (``MEDIA_STORAGE=s3``)."""
    return getattr(settings, "MEDIA_STORAGE", FILESYSTEM) == S3


def media_key_check(key: str) -> str:
    """``key`` as a clean relative POSIX path; ValueError naming the problem otherwise.

    Refuses empty keys, NUL bytes, backslashes, absolute paths and ``.``/``..`` segments, so
    a key can never address anything outside MEDIA_ROOT or the bucket's media names.
    """
    if not key or "\x00" in key or "\\" in key:
        raise ValueError(f"invalid media key {key!r}: empty, or contains NUL or a backslash")
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid media key {key!r}: must be a relative path without '.' or '..'")
    return str(path)


def _bucket_storage(alias: str = "media") -> Any:
    return storages[alias]


def _call(what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a boto3 call; a 404 becomes MediaObjectMissing, other failures MediaStorageError."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 (only in s3 mode)

    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 404 and code in ("404", "NoSuchKey", "NotFound"):
            raise MediaObjectMissing(f"no object {key!r} in bucket {settings.MEDIA_S3_BUCKET!r}") from exc
        raise MediaStorageError(f"{what} {key!r} failed: {code or status}: {exc}") from exc
    except BotoCoreError as exc:
        raise MediaStorageError(f"{what} {key!r} failed: {exc}") from exc


def media_exists(*, key: str) -> bool:
    """Whether the object ``key`` is in the bucket (s3 mode only)."""
    key = media_key_check(key)
    storage = _bucket_storage()
    try:
        _call("HEAD", key, storage.connection.meta.client.head_object, Bucket=storage.bucket_name, Key=key)
    except MediaObjectMissing:
        return False
    return True


def media_upload(*, path: Path, key: str) -> None:
    """Upload the local file ``path`` as ``key`` (multipart for large files; s3 mode only).

    The object appears whole or not at all (S3 semantics), with the content type of its suffix.
    """
    key = media_key_check(key)
    storage = _bucket_storage()
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    _call(
        "upload",
        key,
        storage.bucket.upload_file,
        str(path),
        key,
        ExtraArgs={"ContentType": content_type},
        Config=storage.transfer_config,
    )


def media_download(*, key: str, dest: Path) -> Path:
    """Download ``key`` to ``dest`` (s3 mode only): written to a hidden temporary name next to
    ``dest`` and renamed on success, so ``dest`` is never a partial file. Returns ``dest``."""
    key = media_key_check(key)
    storage = _bucket_storage()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        _call("download", key, storage.bucket.download_file, key, tmp, Config=storage.transfer_config)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def media_signed_url(*, key: str, content_type: str | None = None, expires: int | None = None) -> str:
    """A presigned GET URL for ``key`` that browsers can use for ``expires`` seconds
    (default ``MEDIA_URL_EXPIRES``), signed for ``MEDIA_S3_PUBLIC_ENDPOINT_URL`` when set (the
    address browsers reach, which may differ from the one the servers use). Signing is local:
    no request is made, so the object's existence is not checked here."""
    key = media_key_check(key)
    alias = "media_public" if "media_public" in settings.STORAGES else "media"
    parameters = {"ResponseContentType": content_type} if content_type else None
    return _bucket_storage(alias).url(key, parameters=parameters, expire=expires or settings.MEDIA_URL_EXPIRES)


def _scratch_dir() -> str | None:
    """Where s3 mode keeps its temporary local copies (``MEDIA_WORK_DIR``; default: system temp)."""
    folder = getattr(settings, "MEDIA_WORK_DIR", "") or None
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def media_local_file(path: Path) -> Iterator[Path]:
    """A local file with the bytes of ``path`` (a path under MEDIA_ROOT) for the block's duration.

    The file itself when it exists on this machine (filesystem mode, or a local copy in s3 mode);
    in s3 mode otherwise a scratch download of the key ``path.relative_to(MEDIA_ROOT)``, deleted
    when the block ends. In filesystem mode a missing file is yielded as is (the reader reports
    it as before).
    """
    if path.is_file() or not media_is_remote():
        yield path
        return
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        key = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        raise MediaObjectMissing(f"{path} is not under MEDIA_ROOT") from None
    with tempfile.TemporaryDirectory(prefix="vidjudge-fetch-", dir=_scratch_dir()) as folder:
        yield media_download(key=key, dest=Path(folder) / Path(key).name)


class MediaWorkspace:
    """Local files for one run of the media pipeline, whichever the storage.

    Filesystem mode: ``root`` is MEDIA_ROOT and every method works in place (what the pipeline
    always did). S3 mode: ``root`` is a scratch folder; :meth:`has` also asks the bucket,
    :meth:`local` downloads what is only in the bucket, :meth:`publish` uploads an output, and
    :meth:`keep` uploads an original straight from its source file.
    """

    def __init__(self, *, root: Path, remote: bool) -> None:
        self.root = root
        self.remote = remote

    def path(self, key: str) -> Path:
        """Where ``key`` is (or is to be written) on this machine."""
        return self.root / media_key_check(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is stored (locally, or in the bucket in s3 mode)."""
        return self.path(key).is_file() or (self.remote and media_exists(key=key))

    def local(self, key: str) -> Path:
        """A local path with the bytes of the stored ``key`` (downloaded in s3 mode if needed)."""
        path = self.path(key)
        if self.remote and not path.is_file():
            media_download(key=key, dest=path)
        return path

    def publish(self, key: str) -> None:
        """Store the file just written at :meth:`path` ``(key)`` (an upload in s3 mode)."""
        if self.remote:
            media_upload(path=self.path(key), key=key)

    def keep(self, source: Path, key: str) -> Path:
        """Store ``source`` as ``key`` once; return a local path with its bytes to read.

        Filesystem mode: hard-linked (or copied) into MEDIA_ROOT atomically, unless a file of the
        same size is already there. S3 mode: uploaded unless the object exists; the source itself
        is returned (no local copy is made).
        """
        if self.remote:
            if not media_exists(key=key):
                media_upload(path=source, key=key)
            return source
        dest = self.path(key)
        _link_or_copy(source, dest)
        return dest


def _link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link (or copy) ``source`` to ``dest`` atomically, once."""
    if dest.is_file() and dest.stat().st_size == source.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    try:
        try:
            os.unlink(tmp)
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def media_workspace() -> Iterator[MediaWorkspace]:
    """The workspace for one media-pipeline run (see :class:`MediaWorkspace`); in s3 mode its
    scratch folder, and everything downloaded or written there, is removed when the block ends."""
    if not media_is_remote():
        root = Path(settings.MEDIA_ROOT).resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield MediaWorkspace(root=root, remote=False)
        return
    with tempfile.TemporaryDirectory(prefix="vidjudge-media-", dir=_scratch_dir()) as folder:
        yield MediaWorkspace(root=Path(folder), remote=True)
