"""Opening an import URL so that it can only ever reach a public address (no SSRF).

``check_import_url`` (annotation.manifest) decides whether a URL may be fetched at all. This
module enforces it where it counts, at connect time:

- every connection, the first and each redirect's, resolves the host itself and refuses to
  connect when any address it resolves to is not public (loopback, private, link-local,
  metadata services, ...), then connects to the address it checked: a DNS answer that
  changes between the check and the connect (rebinding) cannot slip through;
- each redirect must itself pass ``check_import_url`` (an allowed host, http(s)), at most
  ``MAX_REDIRECTS`` of them;
- proxies from the environment are not used (a proxy would connect on our behalf, unchecked).

A refusal raises :class:`UrlRefused` (permanent: retrying will not help); a network failure
raises ``OSError`` (``urllib.error.URLError`` and friends), which callers may retry.
"""

from __future__ import annotations

import functools
import http.client
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

from annotation.manifest import address_problem, check_import_url

MAX_REDIRECTS = 5
AddressCheck = Callable[[str], "str | None"]


class UrlRefused(Exception):
    """The URL, a redirect, or an address it resolves to is not allowed; ``str(exc)`` says why."""


def _connect_checked(
    host: str, port: int, timeout: Any, source_address: Any, address_check: AddressCheck
) -> socket.socket:
    """Resolve ``host``; refuse if any of its addresses fails ``address_check``; connect to
    one of the checked addresses (never resolving again)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        problem = address_check(str(info[4][0]))
        if problem:
            raise UrlRefused(f"refusing to connect to {host}: {problem}")
    last_error: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # noqa: SLF001 - http.client's own sentinel
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error or OSError(f"cannot connect to {host}")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, address_check: AddressCheck, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address_check = address_check

    def connect(self) -> None:
        self.sock = _connect_checked(self.host, self.port, self.timeout, self.source_address, self._address_check)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, address_check: AddressCheck, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address_check = address_check

    def connect(self) -> None:
        sock = _connect_checked(self.host, self.port, self.timeout, self.source_address, self._address_check)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # certificate checked for the name


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address_check: AddressCheck) -> None:
        super().__init__()
        self._connection = functools.partial(_CheckedHTTPConnection, address_check=address_check)

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address_check: AddressCheck) -> None:
        super().__init__()
        self._connection = functools.partial(_CheckedHTTPSConnection, address_check=address_check)

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req, context=self._context)


class _CheckedRedirectHandler(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, allowed_hosts: list[str], address_check: AddressCheck) -> None:
        super().__init__()
        self._allowed_hosts = allowed_hosts
        self._address_check = address_check

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib's signature
        reason = check_import_url(
            newurl, enabled=True, allowed_hosts=self._allowed_hosts, address_check=self._address_check
        )
        if reason:
            raise UrlRefused(f"redirected to {newurl}: {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_import_url(
    url: str,
    *,
    allowed_hosts: list[str],
    timeout: float = 30.0,
    address_check: AddressCheck = address_problem,
) -> Any:
    """Open ``url`` for reading (a urllib response; use it as a context manager).

    ``url`` must pass ``check_import_url`` with ``allowed_hosts``; see the module docstring
    for what is checked on the way. ``address_check`` (an address -> reason or None) is the
    rule for addresses; the default admits public unicast addresses only.
    """
    reason = check_import_url(url, enabled=True, allowed_hosts=allowed_hosts, address_check=address_check)
    if reason:
        raise UrlRefused(reason)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _CheckedHTTPHandler(address_check),
        _CheckedHTTPSHandler(address_check),
        _CheckedRedirectHandler(allowed_hosts, address_check),
    )
    return opener.open(url, timeout=timeout)
