"""Reading tabular import files (CSV or JSON Lines) into numbered rows, and checking paths.

Pure helpers shared by every importer (manifests, judgments, scores): no database access
(``check_import_url`` may look a host name up in DNS when asked to).
"""

from __future__ import annotations

import codecs
import csv
import io
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterator
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


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: mapped (::ffff:a.b.c.d), compatible
    (::a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (both ends)."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and not (ip.is_loopback or ip.is_unspecified)):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def address_problem(address: str) -> str | None:
    """None when ``address`` (an IP literal) is a public unicast address, else why it is not.

    Refused: loopback, private, link-local, shared (100.64/10), multicast, reserved,
    unspecified, documentation and benchmark ranges, IPv6 site-local, and every IPv6 address
    that embeds one of those IPv4 addresses (mapped, compatible, NAT64, 6to4, Teredo).
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates = [*_embedded_ipv4(ip), ip]  # the IPv4 it leads to says more than its own range
    for candidate in candidates:
        for attribute, words in (
            ("is_loopback", "a loopback"),
            ("is_unspecified", "an unspecified"),
            ("is_link_local", "a link-local"),
            ("is_multicast", "a multicast"),
            ("is_reserved", "a reserved"),
            ("is_private", "a private"),
            ("is_site_local", "a site-local"),
        ):
            if getattr(candidate, attribute, False):
                inside = "" if candidate is ip else f" (it leads to {candidate})"
                return f"{address} is {words} address{inside}"
        if not candidate.is_global:
            return f"{address} is not a public address"
    return None


def check_import_url(
    raw: str,
    *,
    enabled: bool,
    allowed_hosts: list[str],
    resolve: bool = False,
    address_check: Callable[[str], str | None] | None = None,
) -> str | None:
    """None when ``raw`` may be fetched, else the reason it may not.

    Only http(s) URLs without credentials, whose host is one of ``allowed_hosts`` (exact,
    case-insensitive); an IP-literal host must be public (see ``address_problem``). With
    ``resolve`` the host name is looked up and every address it resolves to must be public:
    a listed name that points inside the network is refused too. The fetch itself checks
    again at connect time and on every redirect (annotation.url_fetch), so a DNS answer that
    changes in between gains nothing. ``address_check`` replaces ``address_problem`` as the
    rule for addresses.
    """
    address_check = address_check or address_problem
    if not enabled:
        return "URL import is disabled (set IMPORT_URLS_ENABLED and IMPORT_URL_ALLOWED_HOSTS)"
    try:
        parsed = urlparse(raw)
        host = (parsed.hostname or "").lower().rstrip(".")
        port = parsed.port
    except ValueError as exc:  # a bad port or bracketed host
        return f"not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not host:
        return "not an http(s) URL"
    if parsed.username is not None or parsed.password is not None:
        return "credentials in the URL are not allowed"
    if host not in {h.lower().rstrip(".") for h in allowed_hosts if h}:
        return f"host {host!r} is not in IMPORT_URL_ALLOWED_HOSTS"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        is_literal = False
    else:
        is_literal = True
    if is_literal:
        problem = address_check(host)
        return f"refusing to fetch: {problem}" if problem else None
    if resolve:
        try:
            infos = socket.getaddrinfo(host, port or (443 if parsed.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            return f"cannot resolve {host}: {exc}"
        for info in infos:
            problem = address_check(str(info[4][0]))
            if problem:
                return f"refusing to fetch from {host}: it resolves to an address that is not public ({problem})"
    return None


def is_url(raw: str) -> bool:
    return raw.lower().startswith(("http://", "https://"))
