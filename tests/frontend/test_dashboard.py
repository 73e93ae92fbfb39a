"""The manager dashboard: access, figures, and numbers equal to analysis.analyze.

The cache behind it (stale-while-revalidate, debounce, shared with the API) is tested in
tests/frontend/test_dashboard_cache.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse

from analysis import analyze
from annotation.selectors.dashboard import scatter_points
from annotation.selectors.labels import judgments_frame, question_keys
from metrics.models import MetricScore
from tests.factories import FETV_GENERATORS as GENERATORS
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, fetv_like_import, make_clip_scores

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    cache.clear()
    project = ProjectFactory()
    manager = MembershipFactory(project=project, role="manager", user=UserFactory(username="boss")).user
    rater = MembershipFactory(project=project, role="rater", user=UserFactory(username="plainrater")).user
    job = fetv_like_import(project=project)
    assert job.error_rows == 0
    make_clip_scores(project=project, seed=3)
    return project, manager, rater


def _page_data(response) -> dict:
    match = re.search(rb'<script id="dashboard-data" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "json_script missing"
    return json.loads(match.group(1))


def test_manager_sees_dashboard(client, seeded):
    project, manager, _ = seeded
    client.force_login(manager)
    response = client.get(reverse("frontend:dashboard", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for marker in (
        'id="ranking-table"',
        'id="rating-plot"',
        'id="winrate-plot"',
        'id="scatter-plot"',
        'id="agreement-table"',
        'id="alignment-table"',
        'id="position-table"',
        'id="rater-table"',
        'id="question-select"',
        "frontend/js/dashboard.js",
    ):
        assert marker in html
    assert "NaN" not in html
    data = _page_data(response)
    assert {"visual_appeal", "final_verdict"} <= set(data["questions"])
    assert data["questions"]["text_match"]["n_judgments"] == 0
    assert len(data["questions"]["final_verdict"]["ranking"]["items"]) == len(GENERATORS)
    assert data["scatter"]["final_verdict"]["clip_score"]["n_shown"] > 0


def test_rater_gets_404(client, seeded):
    project, _, rater = seeded
    client.force_login(rater)
    assert client.get(reverse("frontend:dashboard", args=[project.pk])).status_code == 404


def test_anonymous_redirected(client, seeded):
    project, _, _ = seeded
    response = client.get(reverse("frontend:dashboard", args=[project.pk]))
    assert response.status_code == 302


def test_numbers_equal_analyze(client, seeded):
    project, manager, _ = seeded
    client.force_login(manager)
    data = _page_data(client.get(reverse("frontend:dashboard", args=[project.pk])))

    questions = question_keys(project_id=project.pk)
    judgments = judgments_frame(project_id=project.pk, questions=questions, with_context=True)
    scores = MetricScore.objects.filter(video__project=project).values_list(
        "video__generator__name", "video__prompt_id", "metric", "value"
    )
    import pandas as pd

    scores = pd.DataFrame(list(scores), columns=["generator", "prompt_id", "metric", "value"])
    expected = analyze(judgments, scores, questions=questions, bootstrap_rounds=1000, seed=0)
    expected = json.loads(json.dumps(expected))
    for key in ("summary", "questions"):
        assert data[key] == expected[key]
    q = data["questions"]["final_verdict"]
    assert q["alignment"]["metrics"]["clip_score"]["pairwise_accuracy"]["value"] is not None
    # Rater names are the imported usernames.
    assert sorted(r["name"].rsplit("-", 1)[-1] for r in data["raters"].values()) == ["r1", "r2", "r3"]


def test_filters_generators_and_raters(client, seeded):
    project, manager, _ = seeded
    client.force_login(manager)
    url = reverse("frontend:dashboard", args=[project.pk])
    data = _page_data(
        client.get(url, {"generator": ["cogvideo", "modelscope", "zeroscope"], "question": "visual_appeal"})
    )
    gens = {it["generator"] for it in data["questions"]["visual_appeal"]["ranking"]["items"]}
    assert gens <= {"cogvideo", "modelscope", "zeroscope"}
    r1 = next(int(k) for k, v in data["raters"].items() if v["name"].endswith("-r1"))
    data = _page_data(client.get(url, {"rater": str(r1)}))
    assert data["summary"]["n_raters"] == 1


def test_scatter_is_bounded():
    import pandas as pd

    n = 5000
    judgments = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "question": "q",
            "generator_a": "g1",
            "generator_b": "g2",
            "prompt_id": np.arange(n),
            "answer": np.where(np.arange(n) % 2, "a", "b"),
            "rater": 1,
        }
    )
    scores = pd.DataFrame(
        {
            "generator": ["g1"] * n + ["g2"] * n,
            "prompt_id": np.r_[np.arange(n), np.arange(n)],
            "metric": "m",
            "value": np.r_[np.ones(n), np.zeros(n)],
        }
    )
    pts = scatter_points(judgments, scores)["q"]["m"]
    assert pts["n_total"] == n
    assert pts["n_shown"] == len(pts["delta"]) == len(pts["preference"]) == 2000
    assert set(pts["delta"]) == {1.0}


def test_scatter_points_equal_a_plain_reference():
    """Every pair's Δmetric and mean preference, against a direct pandas merge (no sampling)."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 4000
    gens = ["g1", "g2", "g3"]
    pair = rng.integers(0, 600, n)
    judgments = pd.DataFrame({
        "pair_id": pair,
        "rater": rng.integers(0, 40, n),
        "question": pd.Categorical(rng.choice(["q1", "q2"], n), categories=["q1", "q2"]),
        "generator_a": pd.Categorical(np.array(gens)[pair % 2], categories=gens),
        "generator_b": pd.Categorical(np.array(gens)[pair % 2 + 1], categories=gens),
        "prompt_id": pair // 2,
        "answer": pd.Categorical(rng.choice(["a", "tie", "b"], n), categories=["a", "tie", "b"]),
    })
    rows = [(g, p, "m", float(rng.normal())) for g in gens for p in range(300) if rng.random() < 0.8]
    scores = pd.DataFrame(rows, columns=["generator", "prompt_id", "metric", "value"])
    got = scatter_points(judgments, scores, max_points=10**6)

    frame = judgments.astype({"question": str, "generator_a": str, "generator_b": str, "answer": str})
    frame["sign"] = frame["answer"].map({"a": 1.0, "tie": 0.0, "b": -1.0})
    pairs = frame.groupby(["question", "pair_id", "generator_a", "generator_b", "prompt_id"], as_index=False).agg(
        preference=("sign", "mean"), n=("sign", "size"))
    values = scores.set_index(["generator", "prompt_id"])["value"]
    pairs = pairs.join(values.rename("va"), on=["generator_a", "prompt_id"]).join(
        values.rename("vb"), on=["generator_b", "prompt_id"]).dropna(subset=["va", "vb"])
    for question, expected in pairs.groupby("question"):
        points = got[question]["m"]
        assert points["n_total"] == points["n_shown"] == len(expected)
        np.testing.assert_allclose(points["delta"], (expected["va"] - expected["vb"]).to_numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(points["preference"], expected["preference"].to_numpy(), rtol=0, atol=1e-12)
        assert points["raters"] == expected["n"].tolist()
