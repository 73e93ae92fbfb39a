"""Sign-in throttling, shared by the login page and ``POST /api/v1/auth/token/``.

Failed sign-ins are counted in the cache (Redis in production, so that every web process
shares the counts) within a window of ``LOGIN_FAILURE_WINDOW_SECONDS`` that starts at the
first failure:

- per username and client address: ``LOGIN_FAILURES_PER_USER`` failures lock that username
  from that address (guessing one account's password);
- per client address: ``LOGIN_FAILURES_PER_ADDRESS`` failures lock the address for every
  username (trying one password on many accounts).

While locked, an attempt is refused before the password is checked, the right password
included, until the window ends (the answer says when). A successful sign-in clears its
username+address count. The client address is ``REMOTE_ADDR``, or with ``NUM_PROXIES`` set
(proxies in front that append to X-Forwarded-For, e.g. 1 behind nginx), the address the
outermost trusted proxy saw; X-Forwarded-For is never trusted otherwise.

If the cache cannot be reached, sign-ins are not throttled (fail open: the password check
still applies, and a Redis outage must not lock everybody out).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

_PREFIX = "vj:login-fail"


@dataclass(frozen=True)
class LoginLocked:
    """A refused attempt: how long until the next one may be made, and the words to show."""

    retry_after: int
    message: str


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the one seen by the outermost of ``NUM_PROXIES``
    trusted proxies (the same rule as DRF's throttles)."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = int(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
    return addresses[-min(proxies, len(addresses))] if addresses else remote


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _keys(*, username: str, address: str) -> list[tuple[str, int, str]]:
    """(cache key, limit, what is locked) for each counter that applies."""
    name = username.strip().casefold()[:300]
    return [
        (f"{_PREFIX}:user:{_digest(name, address)}", settings.LOGIN_FAILURES_PER_USER, "this account"),
        (f"{_PREFIX}:addr:{_digest(address)}", settings.LOGIN_FAILURES_PER_ADDRESS, "every account"),
    ]


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def login_throttle_check(*, username: str, address: str) -> LoginLocked | None:
    """None when a sign-in attempt may go ahead, else why not and for how long."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    keys = _keys(username=username, address=address)
    try:
        counts = cache.get_many([k for k, _, _ in keys] + [f"{k}:start" for k, _, _ in keys])
    except Exception as exc:  # an unreachable cache: fail open (see the module docstring)
        logger.warning("login throttle: cache unavailable (%s); not throttling", exc)
        return None
    now = time.time()
    for key, limit, what in keys:
        if int(counts.get(key) or 0) >= limit:
            started = float(counts.get(f"{key}:start") or now)
            retry_after = max(1, math.ceil(started + window - now))
            return LoginLocked(
                retry_after=retry_after,
                message=(
                    f"Too many failed sign-in attempts for {what} from your address. "
                    f"Try again in {_minutes(retry_after)}."
                ),
            )
    return None


def login_throttle_fail(*, username: str, address: str) -> None:
    """Count one failed sign-in against the username+address and the address."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    now = time.time()
    for key, _limit, _what in _keys(username=username, address=address):
        try:
            if cache.add(key, 1, window):
                cache.set(f"{key}:start", now, window)
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr(): this failure starts a new window
                cache.set(key, 1, window)
                cache.set(f"{key}:start", now, window)
        except Exception as exc:  # fail open
            logger.warning("login throttle: cache unavailable (%s); failure not counted", exc)
            return


def login_throttle_clear(*, username: str, address: str) -> None:
    """A successful sign-in: forget this username+address's failures (not the address's)."""
    key = _keys(username=username, address=address)[0][0]
    try:
        cache.delete_many([key, f"{key}:start"])
    except Exception as exc:  # fail open
        logger.warning("login throttle: cache unavailable (%s)", exc)
