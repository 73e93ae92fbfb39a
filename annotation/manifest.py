"""Reading tabular import files (CSV or JSON Lines) into numbered rows, and checking paths.

Pure helpers shared by every importer (manifests, judgments, scores): no database access.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse


class FileRefused(Exception):
    """The whole file cannot be read (wrong format, missing columns): nothing is imported."""


@dataclass
class Row:
    number: int  # 1-based data row (the CSV header and blank JSONL lines are not counted)
    data: dict[str, Any]
    error: str | None = None  # a row that could not even be parsed


@dataclass
class RowError:
    row: int
    field: str
    message: str


@dataclass
class RowErrors:
    """Collects per-row errors; a row with an error is not stored."""

    items: list[RowError] = field(default_factory=list)
    rows: set[int] = field(default_factory=set)

    def add(self, row: int, field_name: str, message: str) -> None:
        self.items.append(RowError(row, field_name, message))
        self.rows.add(row)


def detect_format(file_name: str, head: bytes) -> str:
    """"csv" or "jsonl", from the file name, else from the first non-blank byte."""
    lower = file_name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"


def read_rows(file_obj: IO[bytes], file_name: str, *, required: tuple[str, ...]) -> Iterator[Row]:
    """Yield numbered rows. Raises FileRefused when the file as a whole is unusable."""
    buffered = io.BufferedReader(file_obj) if not hasattr(file_obj, "peek") else file_obj
    head = buffered.peek(4096)[:4096]
    fmt = detect_format(file_name, head)
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
    try:
        if fmt == "csv":
            yield from _read_csv(text, required)
        else:
            yield from _read_jsonl(text)
    except UnicodeDecodeError as exc:
        raise FileRefused(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    finally:
        text.detach()


def _read_csv(text: io.TextIOWrapper, required: tuple[str, ...]) -> Iterator[Row]:
    reader = csv.DictReader(text)
    if reader.fieldnames is None:
        raise FileRefused("the file is empty")
    header = [name.strip() for name in reader.fieldnames]
    missing = [name for name in required if name not in header]
    if missing:
        raise FileRefused(f"missing column(s) {', '.join(missing)} in the CSV header (found: {', '.join(header)})")
    reader.fieldnames = header
    for number, record in enumerate(reader, start=1):
        if None in record:  # more cells than header columns
            yield Row(number, {}, f"{len(header) + len(record[None])} cells for {len(header)} columns")
            continue
        yield Row(number, {k: (v.strip() if isinstance(v, str) else v) for k, v in record.items()})


def _read_jsonl(text: io.TextIOWrapper) -> Iterator[Row]:
    number = 0
    for line in text:
        if not line.strip():
            continue
        number += 1
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, {}, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(data, dict):
            yield Row(number, {}, "each line must be a JSON object")
            continue
        yield Row(number, data)
    if number == 0:
        raise FileRefused("the file is empty")


def text_value(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def parse_tags(value: Any) -> dict[str, Any]:
    """Tags as a dict. CSV: ``motion=fast;category=animals`` (``;`` or ``|``); a bare word
    becomes ``{word: True}``. JSON: an object, or a list of such strings."""
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return {str(k).strip(): v for k, v in value.items() if str(k).strip()}
    items: list[str]
    if isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str):
        if value.lstrip().startswith("{"):
            try:
                loaded = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"tags look like JSON but do not parse: {exc.msg}") from exc
            return parse_tags(loaded)
        items = value.replace("|", ";").split(";")
    else:
        raise ValueError("tags must be text, a list or an object")
    tags: dict[str, Any] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            key, sep, val = item.partition(":")
        tags[key.strip()] = val.strip() if sep else True
    return tags


def resolve_import_path(raw: str, roots: list[Path]) -> tuple[Path | None, str | None]:
    """Resolve a manifest path under one of ``roots``. Returns (path, None) or (None, reason).

    Refuses ``..`` components outright, and any path whose real location (symlinks followed)
    is outside every root. A relative path is taken relative to each root in turn.
    """
    if "\x00" in raw:
        return None, "the path contains a NUL byte"
    candidate = Path(raw)
    if ".." in candidate.parts:
        return None, "the path contains '..'"
    bases = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    last_reason = "file not found"
    for base in bases:
        try:
            real = base.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, RuntimeError) as exc:  # symlink loop, permission
            last_reason = f"cannot read the path ({exc.__class__.__name__})"
            continue
        if not any(real.is_relative_to(root) for root in roots):
            return None, "the path is outside the allowed import roots (IMPORT_ROOTS)"
        if not real.is_file():
            return None, "the path is not a regular file"
        if not os.access(real, os.R_OK):
            return None, "the file is not readable"
        return real, None
    if candidate.is_absolute() and not any(
        Path(os.path.abspath(candidate)).is_relative_to(root) for root in roots
    ):
        return None, "the path is outside the allowed import roots (IMPORT_ROOTS)"
    return None, last_reason


def check_import_url(raw: str, *, enabled: bool, allowed_hosts: list[str]) -> str | None:
    """None when ``raw`` may be fetched, else the reason it may not."""
    if not enabled:
        return "URL import is disabled (set IMPORT_URLS_ENABLED and IMPORT_URL_ALLOWED_HOSTS)"
    parsed = urlparse(raw)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in ("http", "https") or not host:
        return "not an http(s) URL"
    if host not in [h.lower() for h in allowed_hosts]:
        return f"host {host!r} is not in IMPORT_URL_ALLOWED_HOSTS"
    return None


def is_url(raw: str) -> bool:
    return raw.lower().startswith(("http://", "https://"))
