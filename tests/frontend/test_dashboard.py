"""The manager dashboard: access, figures, and numbers equal to analysis.analyze."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse

from analysis import analyze
from annotation.models import Judgment, Video
from annotation.selectors.dashboard import project_analysis, scatter_points
from annotation.selectors.labels import judgments_frame, question_keys
from annotation.services.judgment_imports import judgments_import
from metrics.models import MetricScore
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

GENERATORS = ["cogvideo", "text2video-zero", "modelscope", "zeroscope"]
STRENGTH = {"cogvideo": 0.2, "text2video-zero": -0.4, "modelscope": 0.5, "zeroscope": -0.1}


def fetv_like_csv(n_prompts: int = 14, raters: tuple[str, ...] = ("r1", "r2", "r3"), seed: int = 7) -> bytes:
    """FETV-like pairwise judgments: 3 raters per pair, tied answers, one noisy rater."""
    rng = np.random.default_rng(seed)
    lines = ["prompt_id,prompt,generator_a,generator_b,rater,final_verdict,visual_appeal"]
    for p in range(n_prompts):
        a, b = rng.choice(len(GENERATORS), 2, replace=False)
        ga, gb = GENERATORS[a], GENERATORS[b]
        gap = STRENGTH[ga] - STRENGTH[gb]
        for rater in raters:
            answers = []
            for _ in range(2):
                u = rng.random() + gap * 0.5 + (rng.normal() * 0.6 if rater == "r3" else 0)
                answers.append("a" if u > 0.62 else ("b" if u < 0.38 else "tie"))
            lines.append(f"P{p},A prompt <b>{p}</b>,{ga},{gb},{rater},{answers[0]},{answers[1]}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def seeded():
    cache.clear()
    project = ProjectFactory()
    manager = MembershipFactory(project=project, role="manager", user=UserFactory(username="boss")).user
    rater = MembershipFactory(project=project, role="rater", user=UserFactory(username="plainrater")).user
    job = judgments_import(project=project, file_obj=io.BytesIO(fetv_like_csv()), file_name="j.csv", placeholders=True)
    assert job.status == "done", job.error
    assert job.error_rows == 0
    # External metric scores, correlated with the generator's strength.
    rng = np.random.default_rng(3)
    MetricScore.objects.bulk_create(
        MetricScore(
            video=video,
            metric="clip_score",
            version="ext",
            source=MetricScore.SOURCE_EXTERNAL,
            value=float(STRENGTH[video.generator.name] + rng.normal() * 0.3),
        )
        for video in Video.objects.filter(project=project).select_related("generator")
    )
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


def test_cache_hit_and_stamp_invalidation(seeded, django_assert_max_num_queries):
    project, _, _ = seeded
    first = project_analysis(project_id=project.pk, bootstrap_rounds=50)
    with django_assert_max_num_queries(6):  # the stamp only, no recompute
        again = project_analysis(project_id=project.pk, bootstrap_rounds=50)
    assert again == first
    judgment = Judgment.objects.filter(project=project).first()
    judgment.answers = {
        **judgment.answers,
        "final_verdict": "tie" if judgment.answers["final_verdict"] != "tie" else "a",
    }
    judgment.save()
    changed = project_analysis(project_id=project.pk, bootstrap_rounds=50)
    assert changed["cache_stamp"] != first["cache_stamp"]


def test_dashboard_invalidate_recomputes_on_commit(seeded, django_capture_on_commit_callbacks, settings):
    from annotation.selectors.dashboard import _cache_key, _params, dashboard_stamp
    from annotation.services.dashboard import dashboard_invalidate

    project, _, _ = seeded
    settings.TASKS_IN_PROCESS = True
    settings.TASKS_IN_PROCESS_MODE = "eager"
    with django_capture_on_commit_callbacks(execute=True):
        dashboard_invalidate(project_id=project.pk)
    key = _cache_key(project_id=project.pk, stamp=dashboard_stamp(project_id=project.pk), params=_params(1000, (), ()))
    assert cache.get(key) is not None


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
