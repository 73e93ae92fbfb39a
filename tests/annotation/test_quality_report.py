"""The per-rater quality report: every figure against a plain reference computation, every flag
with a rater built to trip it (and careful raters tripping none), a constant number of queries."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from scipy import stats

from annotation.models import Judgment, Membership
from annotation.selectors import quality as rules
from annotation.selectors.quality import _gold_outcomes, gold_judgment_correct, project_rater_report
from tests.factories import ProjectFactory, make_pairs, make_rater

pytestmark = pytest.mark.django_db

KEYS = ("final_verdict", "consistency")
FLIP = {"a": "b", "b": "a", "tie": "tie"}


def _judge(pair, rater, answer: str, *, left: str | None = None, left_is_a: bool | None = True,
           duration_ms: int | None = 12_000, flags=(), source="app") -> Judgment:
    """One judgment answering every question alike: ``answer`` canonical, or ``left`` as pressed."""
    if left is not None:
        answer = "tie" if left == "tie" else ("a" if (left == "left") == left_is_a else "b")
    return Judgment.objects.create(
        project=pair.project, pair=pair, rater=rater, answers=dict.fromkeys(KEYS, answer), left_is_a=left_is_a,
        duration_ms=duration_ms, flags=list(flags), source=source,
    )


def _reference_loo(judgments: list[Judgment]) -> dict[int, tuple[int, int]]:
    """Per rater (agreements, answers with a decided majority of the others), the slow way."""
    votes: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for j in judgments:
        for key, answer in j.answers.items():
            votes.setdefault((j.pair_id, key), []).append((j.rater_id, answer))
    out: dict[int, list[int]] = {}
    for entries in votes.values():
        for rater, answer in entries:
            others = [a for r, a in entries if r != rater]
            counts = {a: others.count(a) for a in set(others)}
            agree, decided = out.setdefault(rater, [0, 0])
            if counts:
                top = max(counts.values())
                winners = [a for a, c in counts.items() if c == top]
                if len(winners) == 1:
                    out[rater] = [agree + (winners[0] == answer), decided + 1]
    return {r: (a, d) for r, (a, d) in out.items()}


@pytest.fixture
def campaign():
    project = ProjectFactory(
        rubric=[{"key": k, "text": k} for k in KEYS], gold_min=5, gold_accuracy_threshold=0.7, overlap=8,
    )
    pairs = make_pairs(project, 40)
    names = ["careful1", "careful2", "careful3", "side", "tie", "fast", "contrary", "gold", "imported", "idle"]
    raters = {name: make_rater(project, user__username=name) for name in names}
    rng = random.Random(7)
    gold_pairs = pairs[:5]
    for pair in gold_pairs:
        pair.is_gold, pair.gold_answers = True, {"final_verdict": ["a", "tie"]}
        pair.save(update_fields=["is_gold", "gold_answers"])
    for i, pair in enumerate(pairs):
        for name in ("careful1", "careful2", "careful3"):
            # Careful raters: "a" on the whole, one dissent per rater here and there.
            answer = "b" if (i + names.index(name)) % 10 == 0 and i >= 5 else "a"
            _judge(pair, raters[name], answer, left_is_a=rng.random() < 0.5, duration_ms=rng.randint(8000, 20000))
        if i >= 5:  # Side bias: the left video on 28 of 35 judgments, whatever is shown there.
            _judge(pair, raters["side"], "", left="left" if i < 33 else "right", left_is_a=i % 2 == 0)
    for pair in pairs[5:30]:
        _judge(pair, raters["tie"], "tie", left_is_a=True)  # 25 judgments, all ties
    for i, pair in enumerate(pairs[5:17]):  # 12 judgments, 3 too fast, 1 not watched
        flags = ["too_fast"] if i < 3 else (["not_watched"] if i == 3 else [])
        _judge(pair, raters["fast"], "a", duration_ms=1500 if i < 3 else 9000, flags=flags, left_is_a=i % 2 == 0)
    for i, pair in enumerate(pairs[5:35]):  # against the majority on 27 of 30
        _judge(pair, raters["contrary"], "b" if i < 27 else "a", left_is_a=i % 2 == 0)
    for i, pair in enumerate(gold_pairs):  # 1 of 5 golds right
        _judge(pair, raters["gold"], "a" if i == 0 else "b", left_is_a=i % 2 == 0)
    for pair in pairs[30:33]:
        _judge(pair, raters["imported"], "a", left_is_a=None, duration_ms=None, source="import")
    Membership.objects.filter(user=raters["contrary"]).update(excluded=True)
    Membership.objects.filter(user=raters["gold"]).update(paused=True, paused_reason="automatic: gold")
    return project, raters


def test_every_flag_has_its_rater_and_careful_raters_have_none(campaign):
    project, raters = campaign
    report = {row["username"]: row for row in project_rater_report(project=project)}
    assert list(report) == sorted(report)  # by username
    assert {name: row["flags"] for name, row in report.items()} == {
        "careful1": [], "careful2": [], "careful3": [],
        "side": [rules.RATER_FLAG_SIDE_BIAS],
        "tie": [rules.RATER_FLAG_STRAIGHTLINING, rules.RATER_FLAG_LOW_AGREEMENT],  # ties against an "a" majority
        "fast": [rules.RATER_FLAG_TOO_FAST],
        "contrary": [rules.RATER_FLAG_LOW_AGREEMENT],
        "gold": [rules.RATER_FLAG_GOLD_BELOW_THRESHOLD],
        "imported": [],
        "idle": [],
    }
    assert report["tie"]["straightlining_answer"] == "tie"
    assert report["side"]["straightlining_answer"] is None  # left on 80 %: below the 90 % rule
    # Exclusion and pause are shown, and the excluded rater is still reported.
    assert report["contrary"]["excluded"] and not report["contrary"]["paused"]
    assert report["gold"]["paused"] and report["gold"]["paused_reason"] == "automatic: gold"
    assert report["idle"]["judgments"] == 0 and report["idle"]["gold_accuracy"] is None


def test_the_figures_match_a_plain_computation(campaign):
    project, raters = campaign
    report = {row["rater_id"]: row for row in project_rater_report(project=project)}
    judgments = list(Judgment.objects.filter(project=project).select_related("pair"))
    reference_loo = _reference_loo(judgments)
    for rater_id, row in report.items():
        mine = [j for j in judgments if j.rater_id == rater_id]
        assert row["judgments"] == len(mine)
        durations = [j.duration_ms / 1000 for j in mine if j.duration_ms is not None]
        assert row["median_seconds"] == (pytest.approx(statistics.median(durations)) if durations else None)
        assert row["flagged_judgments"] == sum(bool(j.flags) for j in mine)
        assert row["too_fast_judgments"] == sum("too_fast" in j.flags for j in mine)
        assert row["not_watched_judgments"] == sum("not_watched" in j.flags for j in mine)
        graded = [gold_judgment_correct(answers=j.answers, gold_answers=j.pair.gold_answers)
                  for j in mine if j.pair.is_gold]
        graded = [g for g in graded if g is not None]
        assert (row["gold_judged"], row["gold_correct"]) == (len(graded), sum(graded))
        # Sides: each judgment counts once, by the side most of its decisive answers chose.
        sides = []
        for j in mine:
            if j.left_is_a is None:
                continue
            left = sum((a == "a") == j.left_is_a for a in j.answers.values() if a != "tie")
            right = sum((a == "b") == j.left_is_a for a in j.answers.values() if a != "tie")
            if left != right:
                sides.append(left > right)
        assert row["side_judgments"] == len(sides)
        if sides:
            assert row["p_left"] == pytest.approx(sum(sides) / len(sides))
            assert row["p_left_p_value"] == pytest.approx(stats.binomtest(sum(sides), len(sides)).pvalue, rel=1e-9)
        else:
            assert row["p_left"] is None and row["p_left_p_value"] is None
        agree, decided = reference_loo.get(rater_id, (0, 0))
        assert row["loo_comparisons"] == decided
        assert row["loo_agreement"] == (pytest.approx(agree / decided) if decided else None)
    gold = report[raters["gold"].pk]
    assert (gold["gold_judged"], gold["gold_correct"], gold["gold_accuracy"]) == (5, 1, pytest.approx(0.2))
    side = report[raters["side"].pk]
    assert (side["side_judgments"], side["p_left"]) == (35, pytest.approx(0.8))
    imported = report[raters["imported"].pk]
    assert (imported["judgments"], imported["side_judgments"], imported["median_seconds"]) == (3, 0, None)


def test_the_report_reads_a_constant_number_of_queries(campaign, django_assert_max_num_queries):
    project, _ = campaign
    with django_assert_max_num_queries(4):  # raters, questions, gold pairs, judgments
        rows = project_rater_report(project=project)
    assert len(rows) == 10


def test_an_empty_project_reports_its_raters_with_no_figures():
    project = ProjectFactory()
    rater = make_rater(project)
    [row] = project_rater_report(project=project)
    assert row["rater_id"] == rater.pk and row["judgments"] == 0 and row["flags"] == []
    assert row["loo_agreement"] is None and row["p_left"] is None and row["median_seconds"] is None


def test_vectorised_gold_grading_matches_the_per_judgment_rule():
    rng = np.random.default_rng(3)
    keys = ["q0", "q1", "q2"]
    gold = {}
    for pair_id in range(0, 60, 2):
        definition = {}
        for key in keys:
            if rng.random() < 0.6:
                definition[key] = sorted(rng.choice(["a", "b", "tie"], size=rng.integers(1, 3), replace=False).tolist())
        gold[pair_id] = definition
    pair = rng.integers(0, 60, size=2000)
    codes = [rng.integers(-1, 3, size=pair.size).astype(np.int8) for _ in keys]
    graded, correct = _gold_outcomes(pair, codes, keys, gold)
    names = {0: "a", 1: "tie", 2: "b"}
    for i in range(pair.size):
        answers = {key: names[int(c[i])] for key, c in zip(keys, codes, strict=True) if c[i] >= 0}
        expected = gold_judgment_correct(answers=answers, gold_answers=gold[int(pair[i])]) if pair[i] in gold else None
        assert (bool(graded[i]), bool(correct[i])) == (expected is not None, expected is True), i
