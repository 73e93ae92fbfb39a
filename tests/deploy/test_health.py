"""/healthz: one query on the database; answered before host validation and the HTTPS redirect."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_checks_the_database_and_says_so(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert client.head("/healthz").status_code == 200


def test_healthz_answers_probes_that_production_settings_refuse_elsewhere(settings):
    settings.ALLOWED_HOSTS = ["vidjudge.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    probe = Client(HTTP_HOST="127.0.0.1:8000")  # what a container's healthcheck sends, over HTTP
    assert probe.get("/healthz").status_code == 200
    assert probe.get("/login/").status_code == 400  # any other path: DisallowedHost, as it should
    site = Client(HTTP_HOST="vidjudge.example.org")
    redirect = site.get("/login/")
    assert redirect.status_code == 301 and redirect["Location"].startswith("https://vidjudge.example.org/")


def test_only_get_and_head_are_health_probes(client):
    assert client.post("/healthz").status_code == 404  # falls through to the URLconf: no such page
    assert client.get("/healthz/").status_code == 404
