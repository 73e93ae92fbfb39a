"""The OpenAPI schema: generates without warnings, validates, documents every manager endpoint,
and a bounded schemathesis run over it (in process, through the WSGI app) finds no server error."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from tests.api._manager_data import judged_project

pytestmark = pytest.mark.django_db

MANAGER_PATHS = [
    "/api/v1/projects/",
    "/api/v1/projects/{project_id}/",
    "/api/v1/projects/{project_id}/generators/",
    "/api/v1/projects/{project_id}/prompts/",
    "/api/v1/projects/{project_id}/videos/",
    "/api/v1/projects/{project_id}/pairs/",
    "/api/v1/pairs/{pair_id}/",
    "/api/v1/projects/{project_id}/judgments/",
    "/api/v1/projects/{project_id}/judgments/import/",
    "/api/v1/projects/{project_id}/labels/",
    "/api/v1/projects/{project_id}/analysis/",
    "/api/v1/projects/{project_id}/scores/",
    "/api/v1/projects/{project_id}/scores/import/",
    "/api/v1/projects/{project_id}/exports/",
    "/api/v1/projects/{project_id}/exports/jobs/",
    "/api/v1/projects/{project_id}/exports/jobs/{job_id}/",
    "/api/v1/projects/{project_id}/exports/jobs/{job_id}/download/",
]
#: Examples per operation: enough to vary every parameter, bounded so the run stays well under 60 s.
MAX_EXAMPLES = int(__import__("os").environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory, django_db_blocker) -> Path:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    return path


def test_schema_generates_without_warnings_and_validates(schema_file):
    assert schema_file.stat().st_size > 0  # --fail-on-warn raised otherwise


def test_every_manager_endpoint_has_parameters_errors_and_an_example(schema_file):
    schema = yaml.safe_load(schema_file.read_text())
    paths = schema["paths"]
    for path in MANAGER_PATHS:
        assert path in paths, path
        for method, operation in paths[path].items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            codes = set(operation["responses"])
            assert {"401", "403"} <= codes, (path, method, codes)
            text = str(operation)
            assert "example" in text, (path, method)
    judgments = {p["name"] for p in paths["/api/v1/projects/{project_id}/judgments/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "question", "generator", "rater", "updated_after"} <= judgments
    exports = {p["name"] for p in paths["/api/v1/projects/{project_id}/exports/"]["get"]["parameters"]}
    assert {"kind", "format", "question", "aggregation", "ties", "undecided", "generators", "include_excluded",
            "min_agreement", "videos", "run_async"} <= exports


@pytest.fixture
def _keep_the_test_connection():
    """Calling the WSGI app directly fires request_started/finished, which close the database
    connection (and with it the test's transaction); Django's test client disconnects them too."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _fuzz(settings, tmp_path, *, mine: bool) -> tuple[list[str], collections.Counter]:
    """Run every operation (of the manager API when ``mine``, else every other one) with bounded
    examples, as the manager of a judged project (token auth); return the failures."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from rest_framework.authtoken.models import Token
    from schemathesis.checks import not_a_server_error

    from config.wsgi import application

    settings.EXPORT_ROOT = str(tmp_path / "exports")
    data = judged_project()
    token, _ = Token.objects.get_or_create(user=data.manager)
    headers = {"Authorization": f"Token {token.key}"}
    real = {"project_id": data.project.pk, "pair_id": data.pairs[0].pk}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures: list[str] = []
    calls: collections.Counter[str] = collections.Counter()

    def runner(operation):  # noqa: ANN001, ANN202 - a schemathesis APIOperation
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # noqa: ANN001
            if case.path_parameters and calls[operation.label] % 2 == 0:  # half the cases hit real objects
                for name, value in real.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = value
            calls[operation.label] += 1
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        return run

    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.path in MANAGER_PATHS) != mine:
            continue
        try:
            runner(operation)()
        except Exception as exc:  # noqa: BLE001 - collected and reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:3000]}")
    return failures, calls


@pytest.mark.usefixtures("_keep_the_test_connection")
def test_schemathesis_finds_no_server_error_in_the_manager_api(settings, tmp_path):
    started = time.monotonic()
    failures, calls = _fuzz(settings, tmp_path, mine=True)
    assert not failures, "\n".join(failures[:10])
    assert len(calls) >= len(MANAGER_PATHS) and sum(calls.values()) >= 3 * len(calls), calls
    assert time.monotonic() - started < 60


@pytest.mark.usefixtures("_keep_the_test_connection")
def test_schemathesis_finds_no_server_error_in_the_other_endpoints(settings, tmp_path):
    failures, calls = _fuzz(settings, tmp_path, mine=False)
    assert calls
    assert not failures, "\n".join(failures[:10])
