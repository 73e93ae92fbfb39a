"""How exports name videos: the manifest's ``source`` path/URL, or this server's media URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from django.urls import NoReverseMatch, reverse

_PROBE = uuid.UUID(int=0)


def media_url_prefix(base_url: str = "") -> str:
    """What precedes ``<public_id>.mp4`` in a video's media URL (absolute with ``base_url``)."""
    try:
        path = reverse("frontend:media-video", kwargs={"public_id": _PROBE})
    except NoReverseMatch:  # pragma: no cover - the frontend is not installed
        path = f"/media/v/{_PROBE}.mp4"
    prefix = path.split(str(_PROBE))[0]
    return base_url.rstrip("/") + prefix


def video_columns(mode: str, *, prefix: str = "") -> dict[str, str]:
    """Query columns for ``video_a`` / ``video_b`` (``prefix`` reaches the pair, e.g. ``pair__``)."""
    field = "public_id" if mode == "url" else "source"
    return {"video_a": f"{prefix}video_a__{field}", "video_b": f"{prefix}video_b__{field}"}


#: A UUID as SQLite stores it (32 hex digits), to be written in its canonical dashed form.
_UNDASHED = r"^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$"


def _url(array: pa.Array, prefix: str) -> pa.Array:
    # Read through a raw cursor (an aggregate joined to pairs), SQLite hands the stored hex over
    # without Django's converter; the media route takes only the dashed form.
    canonical = pc.replace_substring_regex(array, _UNDASHED, r"\1-\2-\3-\4-\5")
    return pc.binary_join_element_wise(prefix, canonical, ".mp4", "")


def with_video_refs(batches: Iterable[pa.RecordBatch], mode: str, prefix: str) -> Iterator[pa.RecordBatch]:
    """Turn the public ids selected by :func:`video_columns` into URLs (``url`` mode)."""
    for batch in batches:
        if mode != "url":
            yield batch
            continue
        columns = [
            _url(batch.column(i), prefix) if name in ("video_a", "video_b") else batch.column(i)
            for i, name in enumerate(batch.schema.names)
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=batch.schema)
