"""URL imports reach public addresses only: literals, DNS answers, redirects and the media
pipeline's download are checked (annotation.manifest.check_import_url, annotation.url_fetch).
Real HTTP servers on loopback stand in for internal services that must never be reached."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from annotation.manifest import address_problem, check_import_url
from annotation.url_fetch import UrlRefused, open_import_url


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        super().__init__((address, 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass


@contextmanager
def serve(address: str = "127.0.0.1", routes=None) -> Iterator[_Server]:
    server = _Server(address, routes or {})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata services
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - the address under test
        ("::", "an unspecified address"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT (shared address space)
        ("fec0::1", "a site-local address"),
        ("::ffff:127.0.0.1", "a loopback address (it leads to 127.0.0.1)"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "a link-local address (it leads to 169.254.169.254)"),  # NAT64
        ("2002:a00:1::", "a private address (it leads to 10.0.0.1)"),  # 6to4
        ("::7f00:1", "a loopback address (it leads to 127.0.0.1)"),  # IPv4-compatible
    ],
)
def test_non_public_literals_are_refused_even_when_listed(address, words):
    host = f"[{address}]" if ":" in address else address
    reason = check_import_url(f"http://{host}/v.mp4", enabled=True, allowed_hosts=[address])
    assert reason == f"refusing to fetch: {address} is {words}"
    assert address_problem(address) == f"{address} is {words}"


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_literals_in_the_list_are_allowed(address):
    host = f"[{address}]" if ":" in address else address
    assert check_import_url(f"https://{host}/v.mp4", enabled=True, allowed_hosts=[address]) is None


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("https://cdn.example.com/v.mp4", [], "host 'cdn.example.com' is not in IMPORT_URL_ALLOWED_HOSTS"),
        ("https://evil.example.net/v.mp4", ["cdn.example.com"], "host 'evil.example.net' is not in"),
        ("https://cdn.example.com.evil.net/v.mp4", ["cdn.example.com"], "host 'cdn.example.com.evil.net' is not"),
        ("https://cdn.example.com@127.0.0.1/v.mp4", ["cdn.example.com"], "credentials in the URL are not allowed"),
        ("ftp://cdn.example.com/v.mp4", ["cdn.example.com"], "not an http(s) URL"),
        ("file:///etc/passwd", ["cdn.example.com"], "not an http(s) URL"),
        ("http://cdn.example.com:99999/v.mp4", ["cdn.example.com"], "not a valid URL"),
    ],
)
def test_only_listed_hosts_and_plain_http_urls(url, allowed, reason):
    assert check_import_url(url, enabled=True, allowed_hosts=allowed).startswith(reason)


def test_disabled_refuses_everything():
    reason = check_import_url("https://cdn.example.com/v.mp4", enabled=False, allowed_hosts=["cdn.example.com"])
    assert reason.startswith("URL import is disabled")


def test_listed_names_that_resolve_inside_are_refused():
    """A listed host name whose DNS answer is loopback (or private): refused by the lookup."""
    reason = check_import_url("http://localhost/v.mp4", enabled=True, allowed_hosts=["localhost"], resolve=True)
    assert reason.startswith("refusing to fetch from localhost: it resolves to an address that is not public")
    assert "loopback" in reason
    unresolvable = check_import_url("http://nx.invalid/v.mp4", enabled=True, allowed_hosts=["nx.invalid"],
                                    resolve=True)
    assert unresolvable.startswith("cannot resolve nx.invalid")


def test_fetching_a_loopback_server_is_refused_before_connecting():
    with serve(routes={"/v.mp4": (200, {}, b"secret")}) as server:
        port = server.server_address[1]
        with pytest.raises(UrlRefused, match=r"refusing to connect to localhost: .* is a loopback address"):
            open_import_url(f"http://localhost:{port}/v.mp4", allowed_hosts=["localhost"], timeout=5)
        with pytest.raises(UrlRefused, match=r"refusing to fetch: 127.0.0.1 is a loopback address"):
            open_import_url(f"http://127.0.0.1:{port}/v.mp4", allowed_hosts=["127.0.0.1"], timeout=5)
    assert server.hits == []  # never reached


def _only(address: str):
    """The rule of the redirect tests: ``address`` plays a public host, everything else is inside."""
    return lambda candidate: None if candidate == address else f"{candidate} is inside (test rule)"


def test_redirects_are_checked_like_the_first_url():
    """A "public" server (127.0.0.1 under the test's rule) redirects to an internal one
    (127.0.0.2), to a host off the list, and to itself: only the last is followed."""
    with serve("127.0.0.2", {"/internal": (200, {}, b"internal")}) as inside:
        target = f"http://127.0.0.2:{inside.server_address[1]}/internal"
        with serve(routes={}) as public:
            base = f"http://127.0.0.1:{public.server_address[1]}"
            public.routes.update({
                "/to-inside": (302, {"Location": target}, b""),
                "/to-elsewhere": (301, {"Location": "http://elsewhere.example/x"}, b""),
                "/to-self": (307, {"Location": "/video"}, b""),
                "/video": (200, {}, b"video bytes"),
                "/loop": (302, {"Location": "/loop"}, b""),
            })
            allowed = ["127.0.0.1", "127.0.0.2"]
            rule = _only("127.0.0.1")
            with pytest.raises(UrlRefused, match=r"redirected to http://127\.0\.0\.2:\d+/internal: refusing to fetch:"):
                open_import_url(f"{base}/to-inside", allowed_hosts=allowed, timeout=5, address_check=rule)
            with pytest.raises(UrlRefused, match="host 'elsewhere.example' is not in IMPORT_URL_ALLOWED_HOSTS"):
                open_import_url(f"{base}/to-elsewhere", allowed_hosts=allowed, timeout=5, address_check=rule)
            with open_import_url(f"{base}/to-self", allowed_hosts=allowed, timeout=5, address_check=rule) as response:
                assert response.read() == b"video bytes"
            import urllib.error

            with pytest.raises(urllib.error.HTTPError, match="redirect"):
                open_import_url(f"{base}/loop", allowed_hosts=allowed, timeout=5, address_check=rule)
            assert public.hits.count("/loop") <= 6  # at most MAX_REDIRECTS + 1 requests
    assert inside.hits == []


def test_connect_time_check_catches_a_name_resolving_inside():
    """The rule is applied to the addresses the connection really uses (no second lookup)."""
    with serve(routes={"/v.mp4": (200, {}, b"x")}) as server:
        port = server.server_address[1]
        with pytest.raises(UrlRefused, match="refusing to connect to localhost"):
            open_import_url(f"http://localhost:{port}/v.mp4", allowed_hosts=["localhost"], timeout=5,
                            address_check=_only("203.0.113.9"))
    assert server.hits == []


def test_environment_proxies_are_not_used(monkeypatch):
    """A proxy would connect on our behalf, unchecked: the fetch ignores http(s)_proxy."""
    with serve(routes={"/v.mp4": (200, {}, b"direct")}) as target, serve(routes={}) as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        url = f"http://127.0.0.1:{target.server_address[1]}/v.mp4"
        with open_import_url(url, allowed_hosts=["127.0.0.1"], timeout=5, address_check=_only("127.0.0.1")) as r:
            assert r.read() == b"direct"
    assert proxy.hits == [] and target.hits == ["/v.mp4"]


@pytest.mark.django_db
def test_media_pipeline_refuses_a_listed_host_that_is_loopback(settings, django_capture_on_commit_callbacks):
    """End to end: the manifest row is accepted (the host is listed), the download is refused,
    the video fails with the reason, and the loopback server is never asked."""
    from annotation.models import Video
    from annotation.services.imports import manifest_import
    from tests.factories import ProjectFactory

    with serve(routes={"/v.mp4": (200, {}, b"not reached")}) as server:
        settings.IMPORT_URLS_ENABLED = True
        settings.IMPORT_URL_ALLOWED_HOSTS = ["localhost"]
        project = ProjectFactory()
        url = f"http://localhost:{server.server_address[1]}/v.mp4"
        manifest = f"prompt_id,prompt,generator,video\np1,a cat,G,{url}\n".encode()
        with django_capture_on_commit_callbacks(execute=True):  # the media task runs inline (eager)
            job = manifest_import(project=project, file_obj=io.BytesIO(manifest), file_name="m.csv")
        assert job.created_rows == 1
        video = Video.objects.get(project=project)
    assert video.status == Video.STATUS_FAILED
    assert video.error.startswith("refusing to connect to localhost: ") and "loopback" in video.error
    assert server.hits == []
