"""Importing a manifest: every row validated, good rows stored in bulk, bad rows reported.

One transaction per file, with the project row locked so that two imports of the same
project never race; a file that cannot be read at all is refused whole and stores nothing.
Re-importing the same manifest changes nothing (rows already stored count as unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.manifest import (
    FileRefused,
    RowErrors,
    check_import_url,
    is_url,
    parse_tags,
    read_rows,
    resolve_import_path,
    text_value,
)
from annotation.models import Generator, ImportJob, Project, Prompt, Video
from annotation.services.import_jobs import import_job_finish, import_job_refuse, import_job_start

MANIFEST_COLUMNS = ("prompt_id", "prompt", "generator", "video")
_BATCH = 2000

ProgressCallback = Callable[[int], None]


@dataclass
class _GoodRow:
    number: int
    prompt_id: str
    prompt: str
    generator: str
    source: str
    tags: dict[str, Any]


def manifest_import(
    *,
    project: Project,
    file_obj: IO[bytes],
    file_name: str,
    user: AbstractBaseUser | None = None,
    progress: ProgressCallback | None = None,
) -> ImportJob:
    """Import a CSV / JSON Lines manifest into ``project``; returns the finished ImportJob.

    Media work (probe, transcode, poster) for each new video is enqueued on commit.
    """
    job = import_job_start(project=project, kind=ImportJob.KIND_MANIFEST, file_name=file_name, user=user)
    try:
        rows, errors, total = _validate_rows(file_obj, file_name, progress)
    except FileRefused as exc:
        return import_job_refuse(job=job, reason=str(exc))
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        created, unchanged = _store(project, job, rows, errors)
        return import_job_finish(
            job=job, total=total, created=created, unchanged=unchanged,
            errors=((e.row, e.field, e.message) for e in errors.items),
        )


def _validate_rows(
    file_obj: IO[bytes], file_name: str, progress: ProgressCallback | None
) -> tuple[list[_GoodRow], RowErrors, int]:
    """Check every row on its own and against the earlier rows of the file."""
    errors = RowErrors()
    good: list[_GoodRow] = []
    seen_video: dict[tuple[str, str], int] = {}
    seen_prompt: dict[str, tuple[str, int]] = {}
    seen_source: dict[str, int] = {}
    roots = list(settings.IMPORT_ROOTS)
    total = 0
    for row in read_rows(file_obj, file_name, required=MANIFEST_COLUMNS):
        total += 1
        if progress and total % 500 == 0:
            progress(total)
        n = row.number
        if row.error:
            errors.add(n, "", row.error)
            continue
        values = {key: text_value(row.data, key) for key in MANIFEST_COLUMNS}
        missing = [key for key in MANIFEST_COLUMNS if not values[key]]
        if missing:
            for key in missing:
                errors.add(n, key, f"missing value for '{key}'")
            continue
        try:
            tags = parse_tags(row.data.get("tags"))
        except ValueError as exc:
            errors.add(n, "tags", str(exc))
            continue
        if len(values["prompt_id"]) > 200 or len(values["generator"]) > 200:
            errors.add(n, "prompt_id" if len(values["prompt_id"]) > 200 else "generator", "longer than 200 characters")
            continue
        raw = values["video"]
        if is_url(raw):
            reason = check_import_url(
                raw, enabled=settings.IMPORT_URLS_ENABLED, allowed_hosts=settings.IMPORT_URL_ALLOWED_HOSTS
            )
            source = raw
        else:
            path, reason = resolve_import_path(raw, roots)
            source = str(path) if path else raw
        if reason:
            errors.add(n, "video", f"{reason}: {raw}")
            continue
        key = (values["prompt_id"], values["generator"])
        if key in seen_video:
            errors.add(n, "generator", f"duplicate of row {seen_video[key]} (same prompt_id and generator)")
            continue
        if source in seen_source:
            errors.add(n, "video", f"the same file is already used by row {seen_source[source]}")
            continue
        earlier = seen_prompt.get(values["prompt_id"])
        if earlier and earlier[0] != values["prompt"]:
            errors.add(n, "prompt", f"prompt text differs from row {earlier[1]} for the same prompt_id")
            continue
        seen_video[key] = n
        seen_source[source] = n
        seen_prompt.setdefault(values["prompt_id"], (values["prompt"], n))
        good.append(_GoodRow(n, values["prompt_id"], values["prompt"], values["generator"], source, tags))
    if progress:
        progress(total)
    return good, errors, total


def _store(project: Project, job: ImportJob, rows: list[_GoodRow], errors: RowErrors) -> tuple[int, int]:
    """Check rows against what is stored, then bulk-create what is new. Returns (created, unchanged)."""
    from annotation.services.videos import video_process_enqueue  # noqa: PLC0415 (cycle)

    prompts = {p.external_id: p for p in Prompt.objects.filter(project=project)}
    generators = {g.name: g for g in Generator.objects.filter(project=project)}
    existing = {
        (prompt_ext, gen_name): source
        for prompt_ext, gen_name, source in Video.objects.filter(project=project).values_list(
            "prompt__external_id", "generator__name", "source"
        )
    }
    existing_sources = {source: key for key, source in existing.items()}

    new_rows: list[_GoodRow] = []
    unchanged = 0
    tag_updates: dict[str, Prompt] = {}
    for row in rows:
        prompt = prompts.get(row.prompt_id)
        if prompt is not None and prompt.text != row.prompt:
            errors.add(row.number, "prompt", f"prompt_id {row.prompt_id!r} is already stored with different text")
            continue
        stored_source = existing.get((row.prompt_id, row.generator))
        if stored_source is not None:
            if stored_source == row.source:
                unchanged += 1
            else:
                errors.add(
                    row.number,
                    "video",
                    f"a video for prompt {row.prompt_id!r} and generator {row.generator!r} is already stored "
                    f"from another file ({stored_source})",
                )
            continue
        other = existing_sources.get(row.source)
        if other is not None:
            errors.add(row.number, "video", f"this file is already stored for prompt {other[0]!r} / {other[1]!r}")
            continue
        if prompt is not None and row.tags and any(k not in prompt.tags for k in row.tags):
            # New tag keys are added; stored values are never overwritten.
            prompt.tags = {**row.tags, **prompt.tags}
            tag_updates[prompt.external_id] = prompt
        new_rows.append(row)

    new_generators = sorted({r.generator for r in new_rows} - generators.keys())
    if new_generators:
        Generator.objects.bulk_create([Generator(project=project, name=name) for name in new_generators])
        generators = {g.name: g for g in Generator.objects.filter(project=project)}
    new_prompts: dict[str, Prompt] = {}
    for row in new_rows:
        if row.prompt_id not in prompts and row.prompt_id not in new_prompts:
            new_prompts[row.prompt_id] = Prompt(
                project=project, external_id=row.prompt_id, text=row.prompt, tags=row.tags
            )
    if new_prompts:
        Prompt.objects.bulk_create(new_prompts.values(), batch_size=_BATCH)
        if any(p.pk is None for p in new_prompts.values()):  # backends without RETURNING
            new_prompts = {p.external_id: p for p in Prompt.objects.filter(project=project)}
        prompts.update(new_prompts)
    if tag_updates:
        Prompt.objects.bulk_update(tag_updates.values(), ["tags"], batch_size=_BATCH)

    videos = [
        Video(
            project=project,
            prompt=prompts[row.prompt_id],
            generator=generators[row.generator],
            source=row.source,
            import_job=job,
            import_row=row.number,
        )
        for row in new_rows
    ]
    Video.objects.bulk_create(videos, batch_size=_BATCH)
    if videos and videos[0].pk is None:  # backends that do not return ids from bulk inserts
        videos = list(Video.objects.filter(import_job=job).only("id"))
    video_process_enqueue(video_ids=[v.pk for v in videos])
    return len(videos), unchanged
