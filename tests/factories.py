"""factory_boy factories for the domain, and the small data helpers that several test modules share.

Videos default to "ready" with no files on disk; ``make_browser_video`` makes real, playable ones.
"""

from __future__ import annotations

import io
import subprocess
import threading
import uuid
from pathlib import Path

import factory
import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Q

from annotation.models import Assignment, Generator, Judgment, Membership, Pair, Prompt, Video
from annotation.services.assignments import assignment_next
from annotation.services.crowd import project_invite_rotate
from annotation.services.judgment_imports import judgments_import
from annotation.services.judgments import judgment_submit
from annotation.services.projects import project_create
from metrics.models import MetricScore

# Page answers choosing the left video on every question of the default rubric.
ALL_LEFT = {
    "visual_appeal": "left",
    "text_match": "left",
    "camera_motion": "left",
    "object_motion": "left",
    "consistency": "left",
    "final_verdict": "left",
}
PROLIFIC_PID = "5f3c9a2b7d1e4f6a8b0c2d4e"  # Prolific-shaped: 24 hex digits


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


def make_pairs(project, n: int) -> list[Pair]:
    """``n`` pairs of one project, all between the same two new generators, each on its own prompt."""
    gen_a, gen_b = GeneratorFactory(project=project), GeneratorFactory(project=project)
    return [make_pair(project=project, gen_a=gen_a, gen_b=gen_b) for _ in range(n)]


def make_rater(project, **kwargs):
    """A new user who is a rater of ``project``."""
    return MembershipFactory(project=project, role=Membership.ROLE_RATER, **kwargs).user


def make_crowd_project(**kwargs):
    """A project named "Crowd study" with a live invite token (``project.invite_token``)."""
    project = ProjectFactory(**{"name": "Crowd study", **kwargs})
    project_invite_rotate(project=project)
    project.refresh_from_db()
    return project


def judge_next(project, rater, answers=ALL_LEFT):
    """Lease the rater's next pair (there must be one) and submit ``answers`` for it."""
    lease = assignment_next(project=project, rater=rater)
    assert lease is not None
    assignment = Assignment.objects.select_related("project").get(pk=lease.assignment_id)
    return judgment_submit(assignment=assignment, answers=answers)


def in_threads(fn, args_list) -> list:
    """Call ``fn(*args)`` for every args in ``args_list``, each in its own thread, all released at once.

    Returns the results in order; fails the test if any thread raised. Each thread closes its own
    database connection.
    """
    results: list = [None] * len(args_list)
    errors: list = []
    barrier = threading.Barrier(len(args_list))

    def worker(i, args):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def assignment_invariants_check(project) -> None:
    """Assert what must hold in the database whatever happened to ``project``'s leases and judgments."""
    for pair in Pair.objects.filter(project=project).annotate(
        n_judgments=Count("judgments", distinct=True),
        n_holding=Count("assignments", filter=Q(assignments__holds_slot=True), distinct=True),
    ):
        assert pair.judgment_count == pair.n_judgments, pair
        assert pair.lease_count == pair.n_holding, pair
        assert pair.n_judgments <= project.overlap, pair
        assert pair.n_judgments + pair.n_holding <= project.overlap, pair
    assert not Judgment.objects.values("pair", "rater").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert (
        not Assignment.objects.filter(holds_slot=True)
        .values("rater", "project")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # Every judged assignment has exactly its judgment.
    judged = set(Assignment.objects.filter(project=project, status="judged").values_list("id", flat=True))
    assert judged == set(Judgment.objects.filter(project=project).values_list("assignment_id", flat=True))


# --- an analysed campaign (dashboard) ----------------------------------------------------------

FETV_GENERATORS = ["cogvideo", "text2video-zero", "modelscope", "zeroscope"]
FETV_STRENGTH = {"cogvideo": 0.2, "text2video-zero": -0.4, "modelscope": 0.5, "zeroscope": -0.1}


def fetv_like_csv(n_prompts: int = 14, raters: tuple[str, ...] = ("r1", "r2", "r3"), seed: int = 7) -> bytes:
    """FETV-like pairwise judgments: 3 raters per pair, tied answers, one noisy rater."""
    rng = np.random.default_rng(seed)
    lines = ["prompt_id,prompt,generator_a,generator_b,rater,final_verdict,visual_appeal"]
    for p in range(n_prompts):
        a, b = rng.choice(len(FETV_GENERATORS), 2, replace=False)
        ga, gb = FETV_GENERATORS[a], FETV_GENERATORS[b]
        gap = FETV_STRENGTH[ga] - FETV_STRENGTH[gb]
        for rater in raters:
            answers = []
            for _ in range(2):
                u = rng.random() + gap * 0.5 + (rng.normal() * 0.6 if rater == "r3" else 0)
                answers.append("a" if u > 0.62 else ("b" if u < 0.38 else "tie"))
            lines.append(f"P{p},A prompt <b>{p}</b>,{ga},{gb},{rater},{answers[0]},{answers[1]}")
    return ("\n".join(lines) + "\n").encode()


def fetv_like_import(*, project):
    """Import ``fetv_like_csv()`` into ``project`` (placeholder videos); returns the finished job."""
    job = judgments_import(project=project, file_obj=io.BytesIO(fetv_like_csv()), file_name="j.csv", placeholders=True)
    assert job.status == "done", job.error
    return job


def make_clip_scores(*, project, seed: int) -> None:
    """External clip_score values for every video of ``project``, correlated with its generator's strength."""
    rng = np.random.default_rng(seed)
    MetricScore.objects.bulk_create(
        MetricScore(
            video=video,
            metric="clip_score",
            version="ext",
            source=MetricScore.SOURCE_EXTERNAL,
            value=float(FETV_STRENGTH[video.generator.name] + rng.normal() * 0.3),
        )
        for video in Video.objects.filter(project=project).select_related("generator")
    )


# --- real videos for the browser tests --------------------------------------------------------

BROWSER_FPS = 24


def make_browser_video(*, project, prompt, generator, source: str, seconds: float, hue: int) -> Video:
    """A ready video with a real H.264 MP4 (moving test pattern, 320×180, ``BROWSER_FPS``) and a
    poster under MEDIA_ROOT/browser/, made with the ffmpeg CLI."""
    public_id = uuid.uuid4()
    media = Path(settings.MEDIA_ROOT)
    relative, poster = f"browser/{public_id}.mp4", f"browser/{public_id}.jpg"
    (media / relative).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={BROWSER_FPS}:duration={seconds}",
            "-vf", f"hue=h={hue}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(media / relative),
        ],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(media / relative), "-frames:v", "1",
         str(media / poster)],
        check=True,
    )  # fmt: skip
    return Video.objects.create(
        public_id=public_id,
        project=project,
        prompt=prompt,
        generator=generator,
        source=source,
        browser=relative,
        poster=poster,
        status=Video.STATUS_READY,
        fps=BROWSER_FPS,
        duration=seconds,
        width=320,
        height=180,
    )
