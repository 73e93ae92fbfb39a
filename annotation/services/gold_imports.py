"""Importing gold answers for existing pairs: a file marks many pairs as gold at once.

File: CSV or JSON Lines with ``prompt_id``, ``generator_a``, ``generator_b`` and one column per
question key that the gold pair grades, holding the accepted answer(s) relative to that row's
generator_a and generator_b: ``a``, ``b``, ``tie``, or several joined by ``|`` (``a|tie``: a tie
is accepted too); JSON Lines may also give a list (``["a", "tie"]``). An empty cell means the
question is not graded on that pair. The pair must exist (import the videos and generate the
pairs first); answers are stored in the pair's canonical A/B order.

Rows are checked like manifest rows: every bad row (unknown prompt, generator or pair, an answer
that is not allowed, a pair listed twice, no answer at all) is reported with its row number and
the good rows are stored; a file that cannot be read, or has a column that is not a question of
the project, is refused whole. A listed pair that is already gold gets the file's answers
(unchanged when they are equal). Unmarking is done per pair (page or ``PATCH /api/v1/pairs/{id}/``).
"""

from __future__ import annotations

from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.manifest import FileRefused, RowErrors, read_rows
from annotation.models import Generator, ImportJob, Pair, Project, Prompt, Question
from annotation.services.dashboard import dashboard_invalidate
from annotation.services.import_jobs import (
    import_base_values,
    import_columns_check,
    import_job_finish,
    import_job_refuse,
    import_job_start,
)
from annotation.services.quality import GoldAnswersError, gold_answers_clean

GOLD_BASE_COLUMNS = ("prompt_id", "generator_a", "generator_b")
_BATCH = 2000


def _cell(data: dict[str, Any], key: str) -> Any:
    """A question cell: its text stripped ("" when empty or null); any other JSON value as it is
    (a list of answers, or something ``gold_answers_clean`` refuses with its reason)."""
    value = data.get(key)
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else value


def gold_import(
    *, project: Project, file_obj: IO[bytes], file_name: str, user: AbstractBaseUser | None = None
) -> ImportJob:
    """Mark the file's pairs of ``project`` as gold; returns the finished ImportJob with its row errors."""
    job = import_job_start(project=project, kind=ImportJob.KIND_GOLD, file_name=file_name, user=user)
    questions = list(Question.objects.filter(project=project))
    keys = [q.key for q in questions]
    prompts = dict(Prompt.objects.filter(project=project).values_list("external_id", "id"))
    generators = dict(Generator.objects.filter(project=project).values_list("name", "id"))
    pairs = {
        (prompt_id, gen_a, gen_b): (pk, is_gold, answers)
        for pk, prompt_id, gen_a, gen_b, is_gold, answers in Pair.objects.filter(project=project).values_list(
            "id", "prompt_id", "generator_a_id", "generator_b_id", "is_gold", "gold_answers"
        )
    }
    errors = RowErrors()
    wanted: dict[int, dict[str, list[str]]] = {}
    seen: dict[int, int] = {}
    total = 0
    checked_columns = False
    try:
        for row in read_rows(file_obj, file_name, required=GOLD_BASE_COLUMNS):
            total += 1
            n = row.number
            if row.error:
                errors.add(n, "", row.error)
                continue
            if not checked_columns:
                import_columns_check(columns=row.data, known=GOLD_BASE_COLUMNS, questions=keys)
                checked_columns = True
            values = import_base_values(row=row, columns=GOLD_BASE_COLUMNS, errors=errors)
            if values is None:
                continue
            prompt = prompts.get(values["prompt_id"])
            gen_a, gen_b = generators.get(values["generator_a"]), generators.get(values["generator_b"])
            if prompt is None:
                errors.add(n, "prompt_id", f"unknown prompt_id {values['prompt_id']!r} in this project")
                continue
            if gen_a is None or gen_b is None:
                field = "generator_a" if gen_a is None else "generator_b"
                errors.add(n, field, f"unknown generator {values[field]!r}")
                continue
            if gen_a == gen_b:
                errors.add(n, "generator_b", "generator_a and generator_b are the same")
                continue
            flipped = gen_a > gen_b
            found = pairs.get((prompt, *sorted((gen_a, gen_b))))
            if found is None:
                errors.add(n, "prompt_id", "no pair of these two generators for this prompt (generate the pairs first)")
                continue
            pair_id = found[0]
            cells = {key: cell for key in keys if (cell := _cell(row.data, key)) not in ("", [])}
            if not cells:
                errors.add(n, "", "no gold answer for any question")
                continue
            try:
                cleaned = gold_answers_clean(gold_answers=cells, questions=questions, swapped=flipped)
            except GoldAnswersError as exc:
                for key, message in exc.errors.items():
                    errors.add(n, key, message)
                continue
            if pair_id in seen:
                errors.add(n, "prompt_id", f"the same pair as row {seen[pair_id]}")
                continue
            seen[pair_id] = n
            wanted[pair_id] = cleaned
    except FileRefused as exc:
        return import_job_refuse(job=job, reason=str(exc))
    current = {pk: (is_gold, answers) for pk, is_gold, answers in pairs.values()}
    changed = [pk for pk, answers in wanted.items() if current[pk] != (True, answers)]
    with transaction.atomic():
        updates = [Pair(pk=pk, is_gold=True, gold_answers=wanted[pk]) for pk in changed]
        Pair.objects.bulk_update(updates, ["is_gold", "gold_answers"], batch_size=_BATCH)
        if changed:
            dashboard_invalidate(project_id=project.pk)
        return import_job_finish(
            job=job,
            total=total,
            created=len(changed),
            unchanged=len(wanted) - len(changed),
            errors=((e.row, e.field, e.message) for e in errors.items),
        )
