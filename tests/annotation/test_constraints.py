"""Each database invariant: an insert that breaks it fails in the database itself."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation.models import Judgment, Membership, Pair, Project, Question, Video
from tests.factories import (
    GeneratorFactory,
    ProjectFactory,
    PromptFactory,
    UserFactory,
    VideoFactory,
    make_pair,
)

pytestmark = pytest.mark.django_db


def _fails(fn) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_one_video_per_prompt_and_generator():
    video = VideoFactory()
    _fails(
        lambda: Video.objects.create(
            project=video.project, prompt=video.prompt, generator=video.generator, source="other.mp4"
        )
    )


def test_failed_video_needs_a_reason():
    video = VideoFactory()
    _fails(lambda: Video.objects.filter(pk=video.pk).update(status="failed", error=""))
    _fails(lambda: Video.objects.filter(pk=video.pk).update(status="bogus"))


def _pair_kwargs():
    project = ProjectFactory()
    g1, g2 = GeneratorFactory(project=project), GeneratorFactory(project=project)
    p1, p2 = PromptFactory(project=project), PromptFactory(project=project)
    videos = {(p, g): VideoFactory(project=project, prompt=p, generator=g) for p in (p1, p2) for g in (g1, g2)}
    return project, g1, g2, p1, p2, videos


def test_pair_videos_share_the_prompt():
    project, g1, g2, p1, p2, v = _pair_kwargs()
    _fails(
        lambda: Pair.objects.create(
            project=project, prompt=p1, generator_a=g1, generator_b=g2, video_a=v[p1, g1], video_b=v[p2, g2]
        )
    )


def test_pair_videos_match_their_generators():
    project, g1, g2, p1, p2, v = _pair_kwargs()
    _fails(
        lambda: Pair.objects.create(
            project=project, prompt=p1, generator_a=g1, generator_b=g2, video_a=v[p1, g2], video_b=v[p1, g1]
        )
    )


def test_pair_generators_differ_and_are_in_canonical_order():
    project, g1, g2, p1, p2, v = _pair_kwargs()
    _fails(
        lambda: Pair.objects.create(
            project=project, prompt=p1, generator_a=g1, generator_b=g1, video_a=v[p1, g1], video_b=v[p1, g1]
        )
    )
    _fails(
        lambda: Pair.objects.create(
            project=project, prompt=p1, generator_a=g2, generator_b=g1, video_a=v[p1, g2], video_b=v[p1, g1]
        )
    )
    Pair.objects.create(
        project=project, prompt=p1, generator_a=g1, generator_b=g2, video_a=v[p1, g1], video_b=v[p1, g2]
    )  # the valid one goes in


def test_pair_is_unique():
    pair = make_pair()
    _fails(
        lambda: Pair.objects.create(
            project=pair.project,
            prompt=pair.prompt,
            generator_a=pair.generator_a,
            generator_b=pair.generator_b,
            video_a=pair.video_a,
            video_b=pair.video_b,
        )
    )


def _judgment(pair, rater, answers):
    return Judgment.objects.create(project=pair.project, pair=pair, rater=rater, answers=answers)


def test_one_judgment_per_pair_and_rater():
    pair, rater = make_pair(), UserFactory()
    _judgment(pair, rater, {"final_verdict": "a"})
    _fails(lambda: _judgment(pair, rater, {"final_verdict": "b"}))


@pytest.mark.parametrize(
    "answers",
    [
        {"final_verdict": "left"},  # never left/right in storage
        {"final_verdict": "A"},
        {"final_verdict": 1},
        {"no_such_question": "a"},
        ["a"],
    ],
)
def test_answers_only_from_the_allowed_set(answers):
    pair, rater = make_pair(), UserFactory()
    _fails(lambda: _judgment(pair, rater, answers))


def test_answers_respect_a_question_that_disallows_ties():
    pair, rater = make_pair(), UserFactory()
    Question.objects.filter(project=pair.project, key="final_verdict").update(allowed=["a", "b"])
    _fails(lambda: _judgment(pair, rater, {"final_verdict": "tie"}))
    judgment = _judgment(pair, rater, {"final_verdict": "b", "visual_appeal": "tie"})
    _fails(lambda: Judgment.objects.filter(pk=judgment.pk).update(answers={"final_verdict": "tie"}))


def test_answers_must_name_questions_of_the_same_project():
    pair, rater = make_pair(), UserFactory()
    other = ProjectFactory()
    Question.objects.create(project=other, key="only_elsewhere", text="?", allowed=["a", "b", "tie"])
    _fails(lambda: _judgment(pair, rater, {"only_elsewhere": "a"}))


def test_project_and_membership_checks():
    _fails(lambda: Project.objects.create(name="zero overlap", overlap=0))
    project, user = ProjectFactory(), UserFactory()
    _fails(lambda: Membership.objects.create(project=project, user=user, role="owner"))
    Membership.objects.create(project=project, user=user, role="rater")
    _fails(lambda: Membership.objects.create(project=project, user=user, role="manager"))


def test_question_keys_unique_per_project():
    project = ProjectFactory()
    _fails(lambda: Question.objects.create(project=project, key="final_verdict", text="again", allowed=["a"]))
