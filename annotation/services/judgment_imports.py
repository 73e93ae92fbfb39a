"""Importing judgments made elsewhere, so that a past campaign can be analysed here.

File: CSV or JSON Lines with ``prompt_id``, ``generator_a``, ``generator_b``, ``rater`` and one
column per question key holding ``a`` / ``b`` / ``tie`` (relative to that row's generator_a and
generator_b; stored canonically). Optional ``prompt`` (text, used when the prompt is new).
Every row is validated like a manifest row; good rows are stored, bad rows reported.

Imported raters become raters of the project: one account per external rater id, named
``p<project id>-<rater>`` (no usable password), with the id kept in Membership.external_id.
With ``placeholders=True`` a prompt or video that does not exist yet is created, the video
pointing at one shared placeholder clip (for data such as FETV whose videos are unavailable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery

from annotation.manifest import FileRefused, RowErrors, read_rows, text_value
from annotation.models import (
    CANONICAL_ANSWERS,
    Generator,
    ImportJob,
    Judgment,
    Membership,
    Pair,
    Project,
    Prompt,
    Question,
    Video,
)
from annotation.services.import_jobs import (
    import_base_values,
    import_columns_check,
    import_job_finish,
    import_job_refuse,
    import_job_start,
)

BASE_COLUMNS = ("prompt_id", "generator_a", "generator_b", "rater")
OPTIONAL_COLUMNS = ("prompt", "duration_ms", "created_at")
_FLIP = {"a": "b", "b": "a", "tie": "tie"}
_BATCH = 2000


@dataclass
class _Row:
    number: int
    prompt_id: str
    prompt: str
    gen_a: str
    gen_b: str
    rater: str
    answers: dict[str, str]
    duration_ms: int | None


def judgments_import(
    *,
    project: Project,
    file_obj: IO[bytes],
    file_name: str,
    user: AbstractBaseUser | None = None,
    placeholders: bool = False,
) -> ImportJob:
    """Import judgments into ``project``; returns the finished ImportJob with its row errors."""
    job = import_job_start(project=project, kind=ImportJob.KIND_JUDGMENTS, file_name=file_name, user=user)
    questions = {q.key: q for q in Question.objects.filter(project=project)}
    try:
        rows, errors, total = _validate(file_obj, file_name, questions)
    except FileRefused as exc:
        return import_job_refuse(job=job, reason=str(exc))
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        created, unchanged = _store(project, rows, errors, placeholders=placeholders)
        if created:
            from annotation.services.dashboard import dashboard_invalidate  # noqa: PLC0415

            dashboard_invalidate(project_id=project.pk)
        return import_job_finish(
            job=job, total=total, created=created, unchanged=unchanged,
            errors=((e.row, e.field, e.message) for e in errors.items),
        )


def _validate(file_obj: IO[bytes], file_name: str, questions: dict[str, Question]) -> tuple[list[_Row], RowErrors, int]:
    errors = RowErrors()
    good: list[_Row] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    total = 0
    checked_columns = False
    for row in read_rows(file_obj, file_name, required=BASE_COLUMNS):
        total += 1
        n = row.number
        if row.error:
            errors.add(n, "", row.error)
            continue
        if not checked_columns:
            import_columns_check(columns=row.data, known=BASE_COLUMNS + OPTIONAL_COLUMNS, questions=questions)
            checked_columns = True
        values = import_base_values(row=row, columns=BASE_COLUMNS, errors=errors)
        if values is None:
            continue
        if values["generator_a"] == values["generator_b"]:
            errors.add(n, "generator_b", "generator_a and generator_b are the same")
            continue
        answers: dict[str, str] = {}
        bad = False
        for key, question in questions.items():
            raw = text_value(row.data, key).lower()
            if not raw:
                if question.required and key in row.data:
                    errors.add(n, key, f"missing answer for required question '{key}'")
                    bad = True
                continue
            if raw not in CANONICAL_ANSWERS:
                errors.add(n, key, f"answer {raw!r} is not one of a, b, tie")
                bad = True
            elif raw not in question.allowed:
                errors.add(
                    n, key, f"answer {raw!r} is not allowed for '{key}' (allowed: {', '.join(question.allowed)})"
                )
                bad = True
            else:
                answers[key] = raw
        if bad:
            continue
        if not answers:
            errors.add(n, "", "no answer for any question")
            continue
        duration = None
        if text_value(row.data, "duration_ms"):
            try:
                duration = int(float(text_value(row.data, "duration_ms")))
                if duration < 0:
                    raise ValueError
            except ValueError:
                errors.add(n, "duration_ms", "not a non-negative number")
                continue
        first, second = sorted((values["generator_a"], values["generator_b"]))
        key = (values["prompt_id"], first, second, values["rater"])
        if key in seen:
            errors.add(n, "rater", f"duplicate of row {seen[key]} (same prompt, generators and rater)")
            continue
        seen[key] = n
        good.append(
            _Row(
                n,
                values["prompt_id"],
                text_value(row.data, "prompt"),
                values["generator_a"],
                values["generator_b"],
                values["rater"],
                answers,
                duration,
            )
        )
    return good, errors, total


def _store(project: Project, rows: list[_Row], errors: RowErrors, *, placeholders: bool) -> tuple[int, int]:
    prompts = {p.external_id: p for p in Prompt.objects.filter(project=project)}
    generators = {g.name: g for g in Generator.objects.filter(project=project)}
    videos = {
        (v.prompt_id, v.generator_id): v
        for v in Video.objects.filter(project=project).only("id", "prompt_id", "generator_id", "status")
    }

    if placeholders:
        _create_missing(project, rows, prompts, generators, videos)

    pairs = {(p.prompt_id, p.generator_a_id, p.generator_b_id): p for p in Pair.objects.filter(project=project)}
    new_pairs: dict[tuple[int, int, int], Pair] = {}
    resolved: list[tuple[_Row, tuple[int, int, int], bool]] = []
    for row in rows:
        prompt = prompts.get(row.prompt_id)
        gen_a, gen_b = generators.get(row.gen_a), generators.get(row.gen_b)
        if prompt is None:
            errors.add(row.number, "prompt_id", f"unknown prompt_id {row.prompt_id!r} in this project")
            continue
        if gen_a is None or gen_b is None:
            name = row.gen_a if gen_a is None else row.gen_b
            errors.add(row.number, "generator_a" if gen_a is None else "generator_b", f"unknown generator {name!r}")
            continue
        flipped = gen_a.id > gen_b.id
        if flipped:
            gen_a, gen_b = gen_b, gen_a
        video_a, video_b = videos.get((prompt.id, gen_a.id)), videos.get((prompt.id, gen_b.id))
        if video_a is None or video_b is None:
            missing = gen_a.name if video_a is None else gen_b.name
            errors.add(row.number, "prompt_id", f"no video of prompt {row.prompt_id!r} by {missing!r}")
            continue
        key = (prompt.id, gen_a.id, gen_b.id)
        if key not in pairs and key not in new_pairs:
            new_pairs[key] = Pair(
                project=project, prompt=prompt, generator_a=gen_a, generator_b=gen_b, video_a=video_a, video_b=video_b
            )
        resolved.append((row, key, flipped))
    if new_pairs:
        Pair.objects.bulk_create(new_pairs.values(), batch_size=_BATCH)
        pairs = {(p.prompt_id, p.generator_a_id, p.generator_b_id): p for p in Pair.objects.filter(project=project)}

    raters = _raters(project, {row.rater for row, _, _ in resolved})
    stored = {
        (pair_id, rater_id): answers
        for pair_id, rater_id, answers in Judgment.objects.filter(project=project).values_list(
            "pair_id", "rater_id", "answers"
        )
    }
    new: list[Judgment] = []
    unchanged = 0
    for row, key, flipped in resolved:
        pair = pairs[key]
        rater_id = raters[row.rater]
        answers = {k: _FLIP[v] for k, v in row.answers.items()} if flipped else row.answers
        existing = stored.get((pair.id, rater_id))
        if existing is not None:
            if existing == answers:
                unchanged += 1
            else:
                errors.add(
                    row.number, "rater", "this rater's judgment of this pair is already stored with other answers"
                )
            continue
        new.append(
            Judgment(
                project=project,
                pair=pair,
                rater_id=rater_id,
                answers=answers,
                duration_ms=row.duration_ms,
                source=Judgment.SOURCE_IMPORT,
            )
        )
    Judgment.objects.bulk_create(new, batch_size=_BATCH)
    touched = {j.pair_id for j in new}
    if touched:
        counts = Judgment.objects.filter(pair=OuterRef("pk")).values("pair").annotate(n=Count("id")).values("n")
        Pair.objects.filter(pk__in=touched).update(judgment_count=Subquery(counts))
    return len(new), unchanged


def _raters(project: Project, names: set[str]) -> dict[str, int]:
    """External rater id -> user id, creating accounts and rater memberships as needed."""
    user_model = get_user_model()
    usernames = {name: f"p{project.pk}-{name}"[:150] for name in names}
    existing = dict(user_model.objects.filter(username__in=usernames.values()).values_list("username", "id"))
    missing = [u for u in usernames.values() if u not in existing]
    if missing:
        new_users = [user_model(username=u) for u in missing]
        for user in new_users:
            user.set_unusable_password()
        user_model.objects.bulk_create(new_users, batch_size=_BATCH)
        existing = dict(user_model.objects.filter(username__in=usernames.values()).values_list("username", "id"))
    by_name = {name: existing[username] for name, username in usernames.items()}
    members = set(
        Membership.objects.filter(project=project, user_id__in=by_name.values()).values_list("user_id", flat=True)
    )
    Membership.objects.bulk_create(
        [
            Membership(project=project, user_id=uid, role=Membership.ROLE_RATER, external_id=name[:200])
            for name, uid in by_name.items()
            if uid not in members
        ],
        batch_size=_BATCH,
    )
    return by_name


def _create_missing(
    project: Project,
    rows: list[_Row],
    prompts: dict[str, Prompt],
    generators: dict[str, Generator],
    videos: dict[tuple[int, int], Video],
) -> None:
    """Prompts, generators and placeholder videos for rows that name ones not stored yet."""
    from annotation.services.placeholder import placeholder_video_fields  # noqa: PLC0415

    new_gens = sorted({g for r in rows for g in (r.gen_a, r.gen_b)} - generators.keys())
    if new_gens:
        Generator.objects.bulk_create([Generator(project=project, name=name) for name in new_gens])
        generators.update({g.name: g for g in Generator.objects.filter(project=project, name__in=new_gens)})
    new_prompts: dict[str, Prompt] = {}
    for row in rows:
        if row.prompt_id not in prompts and row.prompt_id not in new_prompts:
            new_prompts[row.prompt_id] = Prompt(
                project=project, external_id=row.prompt_id, text=row.prompt or row.prompt_id
            )
    if new_prompts:
        Prompt.objects.bulk_create(new_prompts.values(), batch_size=_BATCH)
        prompts.update({p.external_id: p for p in Prompt.objects.filter(project=project, external_id__in=new_prompts)})
    fields = placeholder_video_fields()
    new_videos: dict[tuple[int, int], Video] = {}
    for row in rows:
        prompt = prompts[row.prompt_id]
        for name in (row.gen_a, row.gen_b):
            key = (prompt.id, generators[name].id)
            if key not in videos and key not in new_videos:
                new_videos[key] = Video(project=project, prompt=prompt, generator=generators[name], **fields)
    if new_videos:
        Video.objects.bulk_create(new_videos.values(), batch_size=_BATCH)
        videos.update(
            {
                (v.prompt_id, v.generator_id): v
                for v in Video.objects.filter(project=project).only("id", "prompt_id", "generator_id", "status")
            }
        )
