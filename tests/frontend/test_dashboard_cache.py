"""The one cached analysis behind the dashboard and the API: stale-while-revalidate, debounced.

Without a broker tasks run inline here, so a refresh is seen as the task starting (Celery's
``task_prerun`` signal, which eager runs send too). The ``broker`` fixture is the production path:
tasks go (through the outbox) to the real Redis as broker, where nothing consumes them, so what
was enqueued is counted in the queue itself.
"""

from __future__ import annotations

import io
import json
import os
import re

import pytest
import redis
from celery.signals import task_prerun
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from annotation.models import Assignment, Judgment, Membership, Pair, Question
from annotation.selectors.analysis import (
    AnalysisParams,
    analysis_lock_key,
    analysis_token_key,
    project_analysis,
)
from annotation.services.assignments import assignment_next
from annotation.services.dashboard import analysis_refresh_request, dashboard_invalidate, project_analysis_refresh
from annotation.services.judgment_imports import judgments_import
from annotation.services.judgments import judgment_submit
from annotation.tasks_dashboard import project_analysis_refresh_task
from config.celery import app
from outbox.models import OutboxMessage
from tests.factories import (
    ALL_LEFT,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    fetv_like_csv,
    in_threads,
    make_pairs,
    make_rater,
)
from tests.frontend.test_dashboard import seeded  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

REFRESH_TASK = "annotation.tasks_dashboard.project_analysis_refresh_task"
# Tables a page or API request must not touch while a result is cached.
HEAVY_TABLES = ("annotation_judgment", "metrics_metricscore", "annotation_pair")


@pytest.fixture
def refresh_runs():
    """Project ids of every refresh task started during the test, in order."""
    runs: list[int] = []

    def record(sender=None, args=None, **_kwargs):
        if sender is not None and sender.name == REFRESH_TASK:
            runs.append(int(args[0]))

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


def _reset_celery_connections() -> None:
    """Forget Celery's cached pools, so that sends go to the broker URL set now."""
    app._pool = None  # noqa: SLF001 - Celery caches its connection pool here
    app.amqp._producer_pool = None  # noqa: SLF001 - and its producer pool here


@pytest.fixture
def broker(settings):
    """Tasks go to this run's own Redis database as broker; ``broker.refreshes()`` lists the
    project ids of the refresh messages waiting in its queue."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        client.ping()
    except redis.RedisError:
        pytest.skip("needs Redis (CI always has it)")
    client.flushdb()
    previous = app.conf.broker_url
    _reset_celery_connections()
    app.conf.broker_url = url
    settings.TASKS_IN_PROCESS = False

    class Broker:
        @staticmethod
        def refreshes() -> list[int]:
            messages = [json.loads(m) for m in client.lrange("default", 0, -1)]
            return [_project_of(m) for m in messages if m["headers"]["task"] == REFRESH_TASK]

    yield Broker
    client.delete("default")
    _reset_celery_connections()
    app.conf.broker_url = previous


def _project_of(message: dict) -> int:
    """The project id argument of a refresh message (Celery protocol 2: body = [args, kwargs, embed])."""
    import base64

    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return int(args[0])


def _page(client, project, **params):
    return client.get(reverse("frontend:dashboard", args=[project.pk]), params)


def _page_data(response) -> dict:
    match = re.search(rb'<script id="dashboard-data" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "json_script missing"
    return json.loads(match.group(1))


def _api(client, project, **params):
    return client.get(f"/api/v1/projects/{project.pk}/analysis/", params)


def _heavy_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if any(t in q["sql"] for t in HEAVY_TABLES)]


def _submit_next(project, rater):
    lease = assignment_next(project=project, rater=rater)
    assert lease is not None
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    return judgment_submit(assignment=assignment, answers=ALL_LEFT)


# --- debounced refresh on the submit path ---------------------------------------------------------


def test_fifty_submits_enqueue_one_refresh_and_the_result_stays_served(broker, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    make_pairs(project, 50)
    rater = make_rater(project)
    before = project_analysis_refresh(project=project)  # a result exists (as the task would have left it)
    for _ in range(50):
        with django_capture_on_commit_callbacks(execute=True):  # each submit commits
            assert _submit_next(project, rater).created
    assert Judgment.objects.filter(project=project).count() == 50
    assert broker.refreshes() == [project.pk]  # one message for 50 submits within the debounce window
    assert not OutboxMessage.objects.exists()  # sent, not left for the relay
    read = project_analysis(project=project)
    assert read.state == "stale" and read.refreshing
    assert read.entry["computed_at"] == before["computed_at"] and read.entry["n_judgments"] == 0
    assert broker.refreshes() == [project.pk]  # the stale read asked again: still the one message
    project_analysis_refresh_task.apply(args=(project.pk,), throw=True)  # a worker takes the message
    read = project_analysis(project=project)
    assert read.state == "fresh" and read.entry["n_judgments"] == 50


def test_invalidation_waits_for_commit_and_costs_no_query(
    broker, django_capture_on_commit_callbacks, django_assert_num_queries
):
    project = ProjectFactory()
    before = project_analysis_refresh(project=project)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dashboard_invalidate(project_id=project.pk)
    assert len(callbacks) == 1
    assert project_analysis(project=project).state == "fresh"  # nothing happens before commit
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)  # a refresh is queued
    with django_assert_num_queries(0):
        callbacks[0]()
    read = project_analysis(project=project)
    assert read.state == "stale" and read.entry["computed_at"] == before["computed_at"]
    assert broker.refreshes() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_invalidations_enqueue_one_refresh(broker):
    project = ProjectFactory()
    in_threads(lambda: [dashboard_invalidate(project_id=project.pk) for _ in range(10)], [()] * 8)
    assert broker.refreshes() == [project.pk]  # 80 changes from 8 threads at once: one message
    assert not OutboxMessage.objects.exists()


def test_cache_outage_never_fails_a_submit(django_capture_on_commit_callbacks):
    project = ProjectFactory()
    make_pairs(project, 1)
    rater = make_rater(project)
    unreachable = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                               "LOCATION": "redis://127.0.0.1:1/0"}}
    lease = assignment_next(project=project, rater=rater)
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    with override_settings(CACHES=unreachable), django_capture_on_commit_callbacks(execute=True):
        assert judgment_submit(assignment=assignment, answers=ALL_LEFT).created
    assert Judgment.objects.filter(project=project).count() == 1


# --- stale-while-revalidate on the page and the API ---------------------------------------------


def test_page_serves_stale_result_with_updating_note_and_never_recomputes(
    broker, client, seeded, django_capture_on_commit_callbacks, refresh_runs  # noqa: F811
):
    project, manager, _ = seeded
    first = project_analysis_refresh(project=project)
    more = fetv_like_csv(n_prompts=4, raters=("r4", "r5"), seed=11)
    with django_capture_on_commit_callbacks(execute=True):
        job = judgments_import(project=project, file_obj=io.BytesIO(more), file_name="more.csv", placeholders=True)
    assert job.status == "done" and job.created_rows == 8, job.error
    assert broker.refreshes() == [project.pk]  # queued; no worker has taken it yet
    served = project_analysis(project=project).entry
    assert served["computed_at"] == first["computed_at"]
    client.force_login(manager)
    with CaptureQueriesContext(connection) as ctx:
        response = _page(client, project)
    assert response.status_code == 200
    assert _heavy_queries(ctx) == []  # neither analyze() nor the judgments frame ran
    assert refresh_runs == [] and broker.refreshes() == [project.pk]
    html = response.content.decode()
    assert 'data-state="stale"' in html and "Updating:" in html
    assert f"from {served['n_judgments']} judgments" in html
    data = _page_data(response)
    assert data["questions"] == served["analysis"]["questions"]
    status = client.get(reverse("frontend:dashboard", args=[project.pk]), {"status": "1"}).json()
    assert status["state"] == "stale" and status["refreshing"] is True
    assert status["computed_at"] == served["computed_at"]


def test_api_and_page_read_the_same_cached_result(client, seeded):  # noqa: F811
    project, manager, _ = seeded
    entry = project_analysis_refresh(project=project)
    client.force_login(manager)
    with CaptureQueriesContext(connection) as ctx:
        api = _api(client, project)
    assert api.status_code == 200, api.content
    assert _heavy_queries(ctx) == []
    body = api.json()
    assert body["cached"] is True and body["stale"] is False
    assert body["judgments_stamp"] == entry["token"] and body["computed_at"] == entry["computed_at"]
    assert body["n_judgments"] == entry["n_judgments"] == Judgment.objects.filter(project=project).count()
    assert body["analysis"] == json.loads(json.dumps(entry["analysis"]))
    page = _page_data(_page(client, project))
    assert page["questions"] == body["analysis"]["questions"]
    assert page["summary"] == body["analysis"]["summary"]
    # After a change both say so, and both still show the same result.
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)
    cache.set(analysis_token_key(project_id=project.pk), "changed", None)
    assert _api(client, project).json()["stale"] is True
    assert 'data-state="stale"' in _page(client, project).content.decode()


def test_api_computes_only_on_a_true_cold_miss(client, seeded):  # noqa: F811
    project, manager, _ = seeded
    client.force_login(manager)
    first = _api(client, project, bootstrap=20).json()
    assert first["cached"] is False and first["stale"] is False
    assert first["analysis"]["parameters"]["bootstrap_rounds"] == 20
    again = _api(client, project, bootstrap=20).json()
    assert again["cached"] is True and again["computed_at"] == first["computed_at"]


def test_page_cold_miss_shows_computing_then_the_result(client, seeded):  # noqa: F811
    project, manager, _ = seeded
    client.force_login(manager)
    # Another request has just asked for the first refresh; it has not finished yet.
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)
    with CaptureQueriesContext(connection) as ctx:
        response = _page(client, project)
    assert _heavy_queries(ctx) == []
    html = response.content.decode()
    assert 'data-state="computing"' in html and "Computing…" in html
    status_url = reverse("frontend:dashboard", args=[project.pk])
    assert client.get(status_url, {"status": "1"}).json()["state"] == "computing"
    project_analysis_refresh(project=project)  # the task finishes
    assert client.get(status_url, {"status": "1"}).json()["state"] == "fresh"
    assert _page_data(_page(client, project))["questions"]["final_verdict"]["n_judgments"] > 0


def test_exclusions_and_gold_pairs_are_shown(client, seeded, django_capture_on_commit_callbacks):  # noqa: F811
    project, manager, _ = seeded
    client.force_login(manager)
    assert _api(client, project).json()["excluded_raters"] == []
    r1 = Membership.objects.get(project=project, external_id="r1")
    r1.excluded = True
    r1.save(update_fields=["excluded"])
    Pair.objects.filter(pk=Pair.objects.filter(project=project).order_by("id").values("id")[:1]).update(is_gold=True)
    with django_capture_on_commit_callbacks(execute=True):  # as the exclusion and gold services do
        dashboard_invalidate(project_id=project.pk)
    assert _api(client, project).json()["stale"] is True  # ... and asks for the refresh (run inline here)
    body = _api(client, project).json()
    assert body["stale"] is False
    assert body["excluded_raters"] == [{"id": r1.user_id, "name": r1.user.username}]
    assert body["analysis"]["summary"]["n_raters"] == 2
    assert body["gold_pairs"] == 1
    html = _page(client, project).content.decode()
    assert "1 rater excluded" in html and r1.user.username in html
    assert "1 gold pair left out of the analysis" in html
    status = client.get(reverse("frontend:dashboard", args=[project.pk]), {"status": "1"}).json()
    assert status["excluded_raters"] == body["excluded_raters"] and status["gold_pairs"] == 1


def test_no_exclusions_said_plainly(client, seeded):  # noqa: F811
    project, manager, _ = seeded
    client.force_login(manager)
    html = _page(client, project).content.decode()
    assert "No raters excluded." in html and 'id="dash-gold"' not in html


# --- staleness without a signal -------------------------------------------------------------------


def test_lost_change_token_reads_stale(seeded):  # noqa: F811
    project, _, _ = seeded
    project_analysis_refresh(project=project)
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)
    cache.delete(analysis_token_key(project_id=project.pk))  # evicted
    assert project_analysis(project=project).state == "stale"


def test_rubric_change_reads_stale(seeded):  # noqa: F811
    project, _, _ = seeded
    project_analysis_refresh(project=project)
    cache.add(analysis_lock_key(project_id=project.pk, params=AnalysisParams()), 1, 60)
    Question.objects.create(project=project, key="sound", text="Which sounds better?", order=99,
                            allowed=["a", "b", "tie"])
    assert project_analysis(project=project).state == "stale"


def test_old_entry_is_rechecked_against_the_database(seeded, settings, refresh_runs):  # noqa: F811
    project, _, _ = seeded
    first = project_analysis_refresh(project=project)
    settings.DASHBOARD_RECHECK_SECONDS = 0
    lock = analysis_lock_key(project_id=project.pk, params=AnalysisParams())
    read = project_analysis(project=project)  # aged: asks the task to compare the fingerprint
    assert read.state == "fresh" and refresh_runs == [project.pk]
    checked = project_analysis(project=project).entry
    assert checked["computed_at"] == first["computed_at"]  # unchanged database: nothing recomputed
    assert checked["checked_at"] > first["checked_at"]
    Judgment.objects.filter(pk=Judgment.objects.filter(project=project).order_by("id")[:1]).delete()  # no signal
    cache.delete(lock)  # the debounce window has passed
    project_analysis(project=project)
    recomputed = project_analysis(project=project).entry
    assert recomputed["n_judgments"] == first["n_judgments"] - 1


def test_filtered_views_are_their_own_entries(client, seeded):  # noqa: F811
    project, manager, _ = seeded
    default = project_analysis_refresh(project=project)
    client.force_login(manager)
    r1 = Membership.objects.get(project=project, external_id="r1").user_id
    data = _page_data(_page(client, project, rater=str(r1)))
    assert data["summary"]["n_raters"] == 1 and data["filters"]["raters"] == [r1]
    assert project_analysis(project=project).entry["computed_at"] == default["computed_at"]
    assert project_analysis(project=project, params=AnalysisParams(raters=(r1,))).entry["n_judgments"] < (
        default["n_judgments"]
    )


def test_refresh_request_is_debounced_per_project(refresh_runs):
    cache.clear()
    one, two = ProjectFactory(), ProjectFactory()
    assert analysis_refresh_request(project_id=one.pk)
    assert analysis_refresh_request(project_id=one.pk)
    assert analysis_refresh_request(project_id=two.pk)
    assert refresh_runs == [one.pk, two.pk]


def test_rater_cannot_read_status(client, seeded):  # noqa: F811
    project, _, rater = seeded
    client.force_login(rater)
    assert client.get(reverse("frontend:dashboard", args=[project.pk]), {"status": "1"}).status_code == 404


def test_manager_of_another_project_gets_nothing(client):
    project, other = ProjectFactory(), ProjectFactory()
    outsider = MembershipFactory(project=other, role="manager", user=UserFactory()).user
    client.force_login(outsider)
    assert client.get(f"/api/v1/projects/{project.pk}/analysis/").status_code in (403, 404)
    assert _page(client, project).status_code == 404


def test_without_a_broker_submits_only_mark_stale_and_readers_request_the_refresh(
    django_capture_on_commit_callbacks, refresh_runs
):
    """Without a broker a refresh would run in the submitting process (a thread of the web
    process, or inline): the submit only marks the result stale; the next reader asks."""
    cache.clear()
    project = ProjectFactory()
    make_pairs(project, 2)
    rater = make_rater(project)
    project_analysis_refresh(project=project)
    with django_capture_on_commit_callbacks(execute=True):
        assert _submit_next(project, rater).created
    lock = analysis_lock_key(project_id=project.pk, params=AnalysisParams())
    assert cache.get(lock) is None and refresh_runs == []  # nothing queued on the rater's path
    read = project_analysis(project=project)  # the reader asks (here it runs at once, inline)
    assert read.state == "stale" and read.refreshing and refresh_runs == [project.pk]
    assert project_analysis(project=project).state == "fresh"
