"""Ids beyond a bigint in a URL are a 404, never a server error from the database."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/projects/{HUGE}/assignments/next/",
        f"/api/v1/assignments/{HUGE}/judgment/",
        f"/api/v1/assignments/{HUGE}/skip/",
        f"/api/v1/projects/{HUGE}/raters/",
        f"/api/v1/projects/{HUGE}/imports/",
        f"/api/v1/pairs/{HUGE}/",
    ],
)
def test_huge_ids_are_not_found(url):
    client = APIClient()
    client.force_authenticate(UserFactory())
    assert client.post(url, {}, format="json").status_code == 404
