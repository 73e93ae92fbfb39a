"""factory_boy factories for the domain. Videos default to "ready" with no files on disk."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from annotation.models import Generator, Membership, Pair, Prompt, Video
from annotation.services.projects import project_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save(update_fields=["password"])


class ProjectFactory(factory.django.DjangoModelFactory):
    """A project with the default rubric, created through the service."""

    class Meta:
        model = "annotation.Project"

    name = factory.Sequence(lambda n: f"Project {n}")
    overlap = 3

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return project_create(**kwargs)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.ROLE_RATER


class GeneratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generator

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"gen-{n}")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    text = factory.Sequence(lambda n: f"a red fox number {n} runs through snow")
    tags = factory.LazyFunction(dict)


class VideoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Video

    prompt = factory.SubFactory(PromptFactory)
    project = factory.SelfAttribute("prompt.project")
    generator = factory.SubFactory(GeneratorFactory, project=factory.SelfAttribute("..project"))
    source = factory.Sequence(lambda n: f"/nowhere/video{n}.mp4")
    status = Video.STATUS_READY
    fps = 24.0
    width = 160
    height = 96
    duration = 1.0


def make_pair(*, project=None, prompt=None, gen_a=None, gen_b=None, **pair_fields) -> Pair:
    """A pair with two ready videos of one prompt, in canonical order."""
    project = project or ProjectFactory()
    prompt = prompt or PromptFactory(project=project)
    gen_a = gen_a or GeneratorFactory(project=project)
    gen_b = gen_b or GeneratorFactory(project=project)
    if gen_a.id > gen_b.id:
        gen_a, gen_b = gen_b, gen_a
    video_a = Video.objects.filter(prompt=prompt, generator=gen_a).first() or VideoFactory(
        project=project, prompt=prompt, generator=gen_a
    )
    video_b = Video.objects.filter(prompt=prompt, generator=gen_b).first() or VideoFactory(
        project=project, prompt=prompt, generator=gen_b
    )
    return Pair.objects.create(
        project=project,
        prompt=prompt,
        generator_a=gen_a,
        generator_b=gen_b,
        video_a=video_a,
        video_b=video_b,
        **pair_fields,
    )
