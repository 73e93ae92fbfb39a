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


def _url(array: pa.Array, prefix: str) -> pa.Array:
    return pc.binary_join_element_wise(prefix, array, ".mp4", "")


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
