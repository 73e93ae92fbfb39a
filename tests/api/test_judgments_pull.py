"""Pulling judgments: cursor pages, filters, and no loss or duplicate under concurrent commits."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotation.api.pagination import judgment_cursor_encode
from annotation.models import Judgment
from annotation.selectors.judgments import judgments_settled_horizon
from tests.api._manager_data import judge, judged_project

pytestmark = pytest.mark.django_db


def _url(data, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/projects/{data.project.pk}/judgments/?{query}"


def _pull_all(client, data, **params) -> tuple[list[dict], str]:
    rows, cursor = [], None
    for _ in range(1000):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = client.get(_url(data, **query))
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return rows, cursor
    raise AssertionError("did not finish")


def test_pages_follow_the_cursor_in_id_order():
    data = judged_project()
    client = data.client()
    rows, _ = _pull_all(client, data, page_size=5)
    ids = [r["id"] for r in rows]
    assert ids == sorted(Judgment.objects.filter(project=data.project).values_list("id", flat=True))
    assert len(ids) == 24
    first = rows[0]
    assert set(first) == {"id", "pair", "prompt_id", "generator_a", "generator_b", "is_gold", "rater", "answers",
                          "left_is_a", "duration_ms", "watch_a_seconds", "watch_b_seconds", "source", "flags",
                          "created_at", "updated_at"}
    assert (first["generator_a"], first["generator_b"], first["prompt_id"]) == ("alpha", "beta", "prompt-0")
    assert first["answers"] == {"final_verdict": "a", "visual_appeal": "a"} and first["duration_ms"] == 12000


def test_next_url_and_has_more():
    data = judged_project()
    body = data.client().get(_url(data, page_size=10)).json()
    assert body["has_more"] and "cursor=" in body["next"] and len(body["results"]) == 10
    second = data.client().get(body["next"]).json()
    assert second["results"][0]["id"] > body["results"][-1]["id"]


def test_resume_from_the_last_cursor_gets_only_new_judgments():
    data = judged_project()
    client = data.client()
    rows, cursor = _pull_all(client, data, page_size=100)
    assert len(rows) == 24
    empty = client.get(_url(data, cursor=cursor)).json()
    assert empty["results"] == [] and not empty["has_more"]
    new = [judge(data.pairs[7], data.raters[0], {"final_verdict": "b"}),
           judge(data.pairs[8], data.raters[1], {"final_verdict": "tie"})]
    later = client.get(_url(data, cursor=empty["next_cursor"])).json()
    assert [r["id"] for r in later["results"]] == [j.pk for j in new]


def test_filters():
    data = judged_project()
    client = data.client()
    by_rater, _ = _pull_all(client, data, rater=data.raters[1].pk)
    assert len(by_rater) == 6 and {r["rater"] for r in by_rater} == {data.raters[1].pk}
    by_generator, _ = _pull_all(client, data, generator="gamma")
    assert by_generator and all("gamma" in (r["generator_a"], r["generator_b"]) for r in by_generator)
    judge(data.pairs[9], data.raters[0], {"visual_appeal": "a"})
    by_question, _ = _pull_all(client, data, question="final_verdict")
    assert len(by_question) == 24  # the judgment without a final verdict is left out
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _pull_all(client, data, updated_after=future)[0] == []


def test_a_forged_cursor_is_refused():
    data = judged_project()
    response = data.client().get(_url(data, cursor="eyJhIjoxfQ:forged"))
    assert response.status_code == 400 and "cursor" in response.json()
    assert data.client().get(_url(data, page_size=0)).status_code == 400


def test_constant_queries_per_page(django_assert_max_num_queries):
    data = judged_project()
    client = data.client()
    client.get(_url(data, page_size=1))  # warm the horizon
    cursor = judgment_cursor_encode(last_id=0, horizon=judgments_settled_horizon())
    with django_assert_max_num_queries(6):
        response = client.get(_url(data, page_size=24, cursor=cursor))
    assert len(response.json()["results"]) == 24


# --- concurrency (real transactions on PostgreSQL) ----------------------------------------


def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (concurrent transactions)")


@pytest.mark.django_db(transaction=True)
def test_a_late_commit_with_a_lower_id_is_not_skipped(settings):
    """T1 draws id k and commits late; T2 draws k+1 and commits at once: k+1 waits for k."""
    _postgres_only()
    settings.JUDGMENTS_SETTLE_WAIT_SECONDS = 0.1
    data = judged_project(with_judgments=False)
    client = data.client()
    _, cursor = _pull_all(client, data)
    inserted, release = threading.Event(), threading.Event()
    ids: dict[str, int] = {}

    def slow():
        try:
            with transaction.atomic():
                ids["slow"] = judge(data.pairs[0], data.raters[0], {"final_verdict": "a"}).pk
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow)
    thread.start()
    assert inserted.wait(10)
    fast = judge(data.pairs[1], data.raters[0], {"final_verdict": "b"})  # autocommit: visible at once
    assert fast.pk > ids["slow"]
    page = client.get(_url(data, cursor=cursor)).json()
    assert page["results"] == [], "served a judgment past one whose transaction is still open"
    release.set()
    thread.join(10)
    rows, _ = _pull_all(client, data, cursor=page["next_cursor"])
    assert [r["id"] for r in rows] == [ids["slow"], fast.pk]


@pytest.mark.django_db(transaction=True)
def test_incremental_pull_during_concurrent_submissions_loses_and_duplicates_nothing(settings):
    _postgres_only()
    settings.JUDGMENTS_SETTLE_WAIT_SECONDS = 0.05  # short: long transactions exercise the fallback too
    data = judged_project(with_judgments=False)
    client = data.client()
    slots = [(pair, rater) for pair in data.pairs for rater in data.raters]
    random.Random(3).shuffle(slots)
    writers, per_writer = 4, len(slots) // 4
    committed: list[int] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def write(index: int) -> None:
        rng = random.Random(index)
        try:
            for pair, rater in slots[index * per_writer : (index + 1) * per_writer]:
                with transaction.atomic():
                    pk = judge(pair, rater, {"final_verdict": rng.choice(["a", "b", "tie"])}).pk
                    # hold some transactions open past the settle wait so commits come out of order
                    time.sleep(rng.choice([0, 0, 0.005, 0.02, 0.15]))
                with lock:
                    committed.append(pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    cursor = None
    finished_at = None
    while True:
        query = {"page_size": 7}
        if cursor:
            query["cursor"] = cursor
        body = client.get(_url(data, **query)).json()
        seen += [r["id"] for r in body["results"]]
        cursor = body["next_cursor"]
        if finished_at is None and not any(t.is_alive() for t in threads):
            finished_at = time.monotonic()
            done.set()
        if done.is_set() and not body["has_more"] and time.monotonic() - finished_at > 0.5:
            break
        if not body["has_more"]:
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(seen) == len(set(seen)), "a judgment was served twice"
    assert seen == sorted(seen)
    assert sorted(committed) == sorted(seen), "a judgment was lost"
    assert len(seen) == writers * per_writer
