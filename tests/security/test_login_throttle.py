"""Sign-in throttling on the login page and POST /api/v1/auth/token/ (config.login_throttle)."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

_addresses = itertools.count(1)


@pytest.fixture
def address() -> str:
    """A client address of this test's own (TEST-NET-3), so that no other test's failures count."""
    from django.core.cache import cache

    ip = f"203.0.113.{next(_addresses) % 250 + 1}"
    yield ip
    from config.login_throttle import _keys

    for username in ("alice", "bob", "carol", "ghost", "dave"):
        for key, _limit, _what in _keys(username=username, address=ip):
            cache.delete_many([key, f"{key}:start"])


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600
    return settings


def _login(client: Client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def test_login_page_locks_a_username_after_its_failures(limits, address):
    UserFactory(username="alice")
    client = Client(REMOTE_ADDR=address)
    for _ in range(3):
        response = _login(client, "alice", "wrong")
        assert response.status_code == 200 and b"Wrong username or password." in response.content
    locked = _login(client, "alice", "pw")  # the right password, but locked: not even checked
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-in attempts for this account from your address." in text
    assert "Try again in 10 minutes." in text
    assert 590 <= int(locked["Retry-After"]) <= 600
    assert "_auth_user_id" not in client.session
    # Another address may still sign in as alice, and alice's lock does not touch bob.
    UserFactory(username="bob")
    assert _login(Client(REMOTE_ADDR="203.0.113.254"), "alice", "pw").status_code == 302
    assert _login(client, "bob", "pw").status_code == 302


def test_success_clears_the_username_count(limits, address):
    UserFactory(username="carol")
    client = Client(REMOTE_ADDR=address)
    for _ in range(2):
        assert _login(client, "carol", "wrong").status_code == 200
    assert _login(client, "carol", "pw").status_code == 302
    client.logout()
    for _ in range(2):  # would be 4 in a row without the reset: still not locked
        assert _login(client, "carol", "wrong").status_code == 200
    assert _login(client, "carol", "pw").status_code == 302


def test_one_address_trying_many_usernames_is_locked(limits, address):
    UserFactory(username="dave")
    client = Client(REMOTE_ADDR=address)
    for i in range(5):
        assert _login(client, f"nobody{i}", "guess").status_code == 200
    response = _login(client, "dave", "pw")
    assert response.status_code == 429
    assert "for every account from your address" in response.content.decode()


def test_token_endpoint_shares_the_counts_and_answers_429(limits, address):
    UserFactory(username="alice")
    api = APIClient(REMOTE_ADDR=address)
    for _ in range(2):
        assert api.post("/api/v1/auth/token/", {"username": "alice", "password": "no"}).status_code == 400
    assert _login(Client(REMOTE_ADDR=address), "alice", "still-no").status_code == 200  # the third, on the page
    response = api.post("/api/v1/auth/token/", {"username": "alice", "password": "pw"})
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many failed sign-in attempts for this account")
    assert 590 <= int(response["Retry-After"]) <= 600
    # A JSON body counts the same way.
    assert api.post("/api/v1/auth/token/", {"username": "alice", "password": "pw"}, format="json").status_code == 429


def test_token_endpoint_still_works_below_the_limit(limits, address):
    UserFactory(username="bob")
    api = APIClient(REMOTE_ADDR=address)
    assert api.post("/api/v1/auth/token/", {"username": "bob", "password": "no"}).status_code == 400
    response = api.post("/api/v1/auth/token/", {"username": "bob", "password": "pw"})
    assert response.status_code == 200 and len(response.json()["token"]) == 40


def test_lock_ends_with_the_window(limits, address):
    limits.LOGIN_FAILURE_WINDOW_SECONDS = 1
    UserFactory(username="ghost")
    client = Client(REMOTE_ADDR=address)
    for _ in range(3):
        _login(client, "ghost", "wrong")
    assert _login(client, "ghost", "pw").status_code == 429
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the cache expires the window's keys (whole seconds)
        if _login(client, "ghost", "pw").status_code == 302:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the lock did not end with its window")


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(limits, address, settings):
    from django.test import RequestFactory

    from config.login_throttle import client_address

    forged = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert client_address(forged) == "10.0.0.5"  # a client cannot choose its own address
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    behind_nginx = RequestFactory().post(
        "/login/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7"
    )
    assert client_address(behind_nginx) == "198.51.100.7"  # what nginx saw, not what the client claimed


def test_unreachable_cache_fails_open(limits, settings):
    """With Redis down, signing in still works (and is not throttled)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.FailSoftRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    from django.core.cache import cache  # Django's test signals rebuild it from the new CACHES

    UserFactory(username="eve")
    client = Client(REMOTE_ADDR="192.0.2.77")
    for _ in range(4):
        assert _login(client, "eve", "wrong").status_code == 200
    assert _login(client, "eve", "pw").status_code == 302
    assert cache.get("anything", "default") == "default"
