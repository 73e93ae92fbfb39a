"""Pagination for the manager API.

- ``IdCursorPagination``: plain listings (generators, prompts, videos, pairs, scores) in id
  order, DRF's opaque cursor (stable under inserts, no OFFSET scans).
- ``LabelsPagination``: limit/offset over a computed labels table.
- The judgments feed's cursor (``judgment_cursor_encode`` / ``_decode``): a signed token holding
  the last id served and the settled horizon (see ``annotation.selectors.judgments``). It is
  always returned, also on the last page, so a client can resume from it later.
"""

from __future__ import annotations

from django.core import signing
from rest_framework.pagination import CursorPagination, LimitOffsetPagination

_SALT = "vidjudge.judgments.cursor.v1"


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class LabelsPagination(LimitOffsetPagination):
    default_limit = 1000
    max_limit = 10_000


class CursorInvalid(ValueError):
    pass


def judgment_cursor_encode(*, last_id: int, horizon: int) -> str:
    return signing.dumps({"a": int(last_id), "h": int(horizon)}, salt=_SALT, compress=True)


def judgment_cursor_decode(token: str) -> tuple[int, int]:
    """(last id served, settled horizon); raises CursorInvalid for a forged or damaged token."""
    try:
        data = signing.loads(token, salt=_SALT)
        after, horizon = int(data["a"]), int(data["h"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise CursorInvalid("invalid cursor: pass back the next_cursor of a previous page unchanged") from exc
    if after < 0 or horizon < 0:
        raise CursorInvalid("invalid cursor")
    return after, horizon
