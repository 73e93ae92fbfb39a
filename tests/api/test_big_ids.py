import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/projects/99999999999999999999/assignments/next/", "/api/v1/assignments/99999999999999999999/judgment/", "/api/v1/assignments/99999999999999999999/skip/", "/api/v1/projects/99999999999999999999/raters/", "/api/v1/projects/99999999999999999999/imports/"])
def test_big(url):
    c = APIClient(); c.force_authenticate(UserFactory())
    assert c.post(url, {}, format="json").status_code in (403, 404)
