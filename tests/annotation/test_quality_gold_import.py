"""Gold answers from a file: good rows stored, each bad row reported by number, refused files
store nothing, rows naming B first stored in canonical terms, re-imports change nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.models import ImportJob, Pair
from annotation.services.gold_imports import gold_import
from tests.factories import GeneratorFactory, ProjectFactory, PromptFactory, make_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory(rubric=[
        {"key": "final_verdict", "text": "Overall?"},
        {"key": "a_or_tie", "text": "Is A fine?", "allowed": ["a", "tie"]},
    ])
    alpha = GeneratorFactory(project=project, name="alpha")
    beta = GeneratorFactory(project=project, name="beta")
    gamma = GeneratorFactory(project=project, name="gamma")
    for pid in ("p1", "p2", "p3"):
        prompt = PromptFactory(project=project, external_id=pid)
        make_pair(project=project, prompt=prompt, gen_a=alpha, gen_b=beta)
    PromptFactory(project=project, external_id="lonely")
    make_pair(project=project, prompt=PromptFactory(project=project, external_id="p4"), gen_a=alpha, gen_b=gamma)
    return project


def _pair(project, prompt_id: str) -> Pair:
    return Pair.objects.get(project=project, prompt__external_id=prompt_id)


def _run(project, text: str, name: str = "gold.csv") -> ImportJob:
    return gold_import(project=project, file_obj=io.BytesIO(text.encode()), file_name=name)


def _errors(job: ImportJob) -> list[tuple[int, str, str]]:
    return [(e.row, e.field, e.message) for e in job.row_errors.all()]


def test_good_rows_are_stored_and_bad_rows_reported_by_number(project):
    job = _run(project, "\n".join([
        "prompt_id,generator_a,generator_b,final_verdict,a_or_tie",
        "p1,alpha,beta,a,",          # 1: good
        "p2,beta,alpha,a|tie,a",     # 2: B first: a_or_tie "a" is canonical "b", not allowed
        "p3,alpha,beta,left,",       # 3: not an answer
        "nope,alpha,beta,a,",        # 4: unknown prompt
        "p1,alpha,delta,a,",         # 5: unknown generator
        "lonely,alpha,beta,a,",      # 6: no such pair
        "p1,beta,alpha,b,",          # 7: the same pair as row 1
        "p3,alpha,beta,,",           # 8: nothing to grade
        "p3,alpha,alpha,a,",         # 9: same generator twice
        "p4,alpha,gamma,a|b|tie,",   # 10: grades nothing
    ]))
    assert job.status == ImportJob.STATUS_DONE
    assert (job.total_rows, job.created_rows, job.unchanged_rows) == (10, 1, 0)
    errors = _errors(job)
    assert [row for row, _, _ in errors] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    by_row = {row: (field, message) for row, field, message in errors}
    # Row 2 names B first: its a_or_tie "a" is canonical "b", which that question does not allow.
    assert by_row[2] == ("a_or_tie", "b is not allowed for this question (allowed: a, tie)")
    assert by_row[3] == ("final_verdict", "'left' is not one of a, b, tie")
    assert by_row[4][0] == "prompt_id" and "unknown prompt_id 'nope'" in by_row[4][1]
    assert by_row[5] == ("generator_b", "unknown generator 'delta'")
    assert "no pair" in by_row[6][1]
    assert by_row[7] == ("prompt_id", "the same pair as row 1")
    assert by_row[8] == ("", "no gold answer for any question")
    assert by_row[9][0] == "generator_b"
    assert "grade nothing" in by_row[10][1]
    assert (_pair(project, "p1").is_gold, _pair(project, "p1").gold_answers) == (True, {"final_verdict": ["a"]})
    assert not Pair.objects.filter(project=project, is_gold=True).exclude(prompt__external_id="p1").exists()


def test_rows_naming_b_first_are_stored_in_canonical_terms_and_reimport_changes_nothing(project):
    text = "prompt_id,generator_a,generator_b,final_verdict,a_or_tie\np2,beta,alpha,a|tie,b\np3,alpha,beta,b,tie\n"
    job = _run(project, text)
    assert (job.created_rows, job.error_rows) == (2, 0), _errors(job)
    assert _pair(project, "p2").gold_answers == {"final_verdict": ["b", "tie"], "a_or_tie": ["a"]}
    assert _pair(project, "p3").gold_answers == {"final_verdict": ["b"], "a_or_tie": ["tie"]}
    again = _run(project, text)
    assert (again.created_rows, again.unchanged_rows) == (0, 2)
    changed = _run(project, "prompt_id,generator_a,generator_b,final_verdict\np3,alpha,beta,a\n")
    assert changed.created_rows == 1 and _pair(project, "p3").gold_answers == {"final_verdict": ["a"]}


def test_json_lines_take_lists(project):
    rows = [
        {"prompt_id": "p1", "generator_a": "alpha", "generator_b": "beta", "final_verdict": ["a", "tie"]},
        {"prompt_id": "p2", "generator_a": "alpha", "generator_b": "beta", "final_verdict": {"x": 1}},
    ]
    job = _run(project, "\n".join(json.dumps(r) for r in rows), name="gold.jsonl")
    assert job.created_rows == 1 and _pair(project, "p1").gold_answers == {"final_verdict": ["a", "tie"]}
    assert _errors(job)[0][:2] == (2, "final_verdict")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("prompt_id,generator_a,generator_b,final_verdit\np1,alpha,beta,a\n", "unknown column(s) final_verdit"),
        ("prompt_id,generator_a,final_verdict\np1,alpha,a\n", "missing column(s) generator_b"),
        ("", "empty"),
    ],
)
def test_a_refused_file_stores_nothing(project, text, fragment):
    job = _run(project, text)
    assert job.status == ImportJob.STATUS_FAILED and fragment in job.error
    assert not Pair.objects.filter(is_gold=True).exists()


def test_the_command_reports_rows_and_refuses_bad_files(project, tmp_path):
    good = tmp_path / "gold.csv"
    good.write_text("prompt_id,generator_a,generator_b,final_verdict\np1,alpha,beta,a\np9,alpha,beta,a\n")
    out = io.StringIO()
    call_command("import_gold", str(project.pk), str(good), stdout=out)
    assert "2 rows, 1 pairs marked or changed, 0 unchanged, 1 bad" in out.getvalue()
    assert "row 2: prompt_id: unknown prompt_id 'p9'" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt_id,generator_a,generator_b,nope\np1,alpha,beta,a\n")
    with pytest.raises(CommandError, match="unknown column"):
        call_command("import_gold", project.name, str(bad), stdout=io.StringIO())
