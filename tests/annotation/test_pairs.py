from __future__ import annotations

import pytest

from annotation.models import Pair, Video
from annotation.services.pairs import pairs_generate
from tests.factories import GeneratorFactory, ProjectFactory, PromptFactory, VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    project = ProjectFactory()
    gens = [GeneratorFactory(project=project) for _ in range(3)]
    prompts = [PromptFactory(project=project) for _ in range(2)]
    for prompt in prompts:
        for gen in gens:
            VideoFactory(project=project, prompt=prompt, generator=gen)
    return project, gens, prompts


def test_every_pair_of_ready_videos_in_canonical_order(setup):
    project, gens, prompts = setup
    assert pairs_generate(project=project) == 6
    for pair in Pair.objects.filter(project=project):
        assert pair.generator_a_id < pair.generator_b_id
        assert pair.video_a.prompt_id == pair.video_b.prompt_id == pair.prompt_id
        assert (pair.video_a.generator_id, pair.video_b.generator_id) == (pair.generator_a_id, pair.generator_b_id)


def test_running_again_adds_only_what_is_new(setup):
    project, gens, prompts = setup
    pairs_generate(project=project)
    assert pairs_generate(project=project) == 0
    new_gen = GeneratorFactory(project=project)
    VideoFactory(project=project, prompt=prompts[0], generator=new_gen)
    VideoFactory(project=project, prompt=prompts[1], generator=new_gen, status=Video.STATUS_FAILED, error="x")
    assert pairs_generate(project=project) == 3  # only prompt 0 has a ready video of the new generator
    assert Pair.objects.filter(project=project).count() == 9


def test_chosen_generators_only(setup):
    project, gens, prompts = setup
    assert pairs_generate(project=project, generator_ids=[gens[0].id, gens[2].id]) == 2
    assert set(Pair.objects.values_list("generator_a_id", "generator_b_id")) == {(gens[0].id, gens[2].id)}


def test_pending_videos_are_not_paired(setup):
    project, gens, prompts = setup
    Video.objects.filter(prompt=prompts[0], generator=gens[0]).update(status=Video.STATUS_PENDING)
    assert pairs_generate(project=project) == 4
