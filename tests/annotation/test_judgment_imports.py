"""Importing judgments made elsewhere: canonical orientation, row errors, idempotence, FETV."""

from __future__ import annotations

import io

import pytest

from annotation.models import ImportJob, Judgment, Membership, Pair, Question, Video
from annotation.services.judgment_imports import judgments_import
from tests.factories import GeneratorFactory, ProjectFactory, PromptFactory, VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory()
    first, second = GeneratorFactory(project=project, name="Alpha"), GeneratorFactory(project=project, name="Beta")
    assert first.id < second.id
    prompt = PromptFactory(project=project, external_id="p1")
    for gen in (first, second):
        VideoFactory(project=project, prompt=prompt, generator=gen)
    return project


def _run(project, text: str, **kwargs) -> ImportJob:
    return judgments_import(project=project, file_obj=io.BytesIO(text.encode()), file_name="j.csv", **kwargs)


HEADER = "prompt_id,generator_a,generator_b,rater,final_verdict,text_match\n"


def test_answers_are_stored_canonically(project):
    job = _run(project, HEADER + "p1,Alpha,Beta,r1,a,tie\np1,Beta,Alpha,r2,a,b\n")
    assert (job.created_rows, job.error_rows) == (2, 0)
    pair = Pair.objects.get(project=project)
    assert pair.generator_a.name == "Alpha"
    answers = {
        j.rater.memberships.get(project=project).external_id: j.answers for j in Judgment.objects.filter(pair=pair)
    }
    assert answers == {
        "r1": {"final_verdict": "a", "text_match": "tie"},
        "r2": {"final_verdict": "b", "text_match": "a"},
    }  # r2's row named Beta first
    assert Pair.objects.get(pk=pair.pk).judgment_count == 2
    assert Membership.objects.filter(project=project, role="rater").count() == 2
    assert Judgment.objects.filter(source="import").count() == 2


def test_bad_rows_are_reported_and_good_rows_kept(project):
    Question.objects.filter(project=project, key="text_match").update(allowed=["a", "b"])
    job = _run(
        project,
        HEADER
        + "\n".join(
            [
                "p1,Alpha,Beta,r1,a,a",  # 1 good
                "p1,Alpha,Gamma,r1,a,a",  # 2 unknown generator
                "p1,Alpha,Beta,r2,left,a",  # 3 not a/b/tie
                "p1,Alpha,Beta,r3,a,tie",  # 4 tie not allowed for text_match
                "p1,Beta,Alpha,r1,b,b",  # 5 duplicate of row 1 (same rater and pair, other order)
                "p1,Alpha,Alpha,r4,a,a",  # 6 same generator twice
                "p9,Alpha,Beta,r5,a,a",  # 7 unknown prompt
                ",Alpha,Beta,r6,a,a",  # 8 missing prompt_id
                "p1,Alpha,Beta,r7,,",  # 9 no answer for required questions
            ]
        )
        + "\n",
    )
    errors = {e.row: e.message for e in job.row_errors.all()}
    assert job.created_rows == 1 and set(errors) == set(range(2, 10))
    assert "unknown generator 'Gamma'" in errors[2]
    assert "not one of a, b, tie" in errors[3]
    assert "not allowed" in errors[4]
    assert "duplicate of row 1" in errors[5]
    assert "the same" in errors[6]
    assert "unknown prompt_id 'p9'" in errors[7]
    assert "missing value for 'prompt_id'" in errors[8]
    assert "missing answer" in errors[9]


def test_unknown_question_column_refuses_the_file(project):
    job = _run(project, "prompt_id,generator_a,generator_b,rater,final_verdikt\np1,Alpha,Beta,r1,a\n")
    assert job.status == ImportJob.STATUS_FAILED and "final_verdikt" in job.error
    assert not Judgment.objects.exists()


def test_reimport_is_unchanged_and_conflicts_are_reported(project):
    _run(project, HEADER + "p1,Alpha,Beta,r1,a,tie\n")
    again = _run(project, HEADER + "p1,Beta,Alpha,r1,b,tie\n")  # same judgment, other order
    assert (again.created_rows, again.unchanged_rows, again.error_rows) == (0, 1, 0)
    conflict = _run(project, HEADER + "p1,Alpha,Beta,r1,b,tie\n")
    assert conflict.error_rows == 1 and "other answers" in conflict.row_errors.get().message
    assert Judgment.objects.get().answers == {"final_verdict": "a", "text_match": "tie"}


def test_placeholders_create_prompts_generators_and_videos():
    project = ProjectFactory()
    job = _run(
        project,
        "prompt_id,prompt,generator_a,generator_b,rater,final_verdict\n"
        "q1,a red fox,X,Y,r1,a\nq1,a red fox,X,Z,r1,tie\n",
        placeholders=True,
    )
    assert job.created_rows == 2
    videos = Video.objects.filter(project=project)
    assert videos.count() == 3 and set(videos.values_list("status", flat=True)) == {"ready"}
    assert Pair.objects.filter(project=project).count() == 2


@pytest.mark.slow
def test_fetv_loads_every_judgment():
    from annotation.management.commands.load_fetv import FETV_PROJECT, load_fetv_project

    project = load_fetv_project()
    assert project.name == FETV_PROJECT
    assert Judgment.objects.filter(project=project).count() == 619 * 6 * 3
    assert Pair.objects.filter(project=project).count() == 619 * 6
    assert Video.objects.filter(project=project).count() == 619 * 4
    assert set(Pair.objects.filter(project=project).values_list("judgment_count", flat=True)) == {3}
    again = load_fetv_project()
    assert again.pk == project.pk
    assert Judgment.objects.filter(project=project).count() == 619 * 6 * 3
