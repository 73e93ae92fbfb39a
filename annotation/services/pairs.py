"""Pair generation: every two ready videos of a prompt from the chosen generators."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from django.db import transaction

from annotation.models import Pair, Project, Video

_BATCH = 5000


@transaction.atomic
def pairs_generate(*, project: Project, generator_ids: Iterable[int] | None = None) -> int:
    """Create the missing pairs of ``project``; returns how many were created.

    Canonical order: video A belongs to the generator with the smaller id. Running it again
    adds only pairs that are new (new ready videos, newly chosen generators).
    """
    Project.objects.select_for_update().filter(pk=project.pk).first()
    videos = Video.objects.filter(project=project, status=Video.STATUS_READY)
    if generator_ids is not None:
        videos = videos.filter(generator_id__in=list(generator_ids))
    by_prompt: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for video_id, prompt_id, generator_id in videos.values_list("id", "prompt_id", "generator_id").iterator(
        chunk_size=10000
    ):
        by_prompt[prompt_id].append((generator_id, video_id))
    existing = set(Pair.objects.filter(project=project).values_list("video_a_id", "video_b_id"))
    new_pairs: list[Pair] = []
    for prompt_id, entries in by_prompt.items():
        entries.sort()
        for (gen_a, vid_a), (gen_b, vid_b) in combinations(entries, 2):
            if (vid_a, vid_b) in existing:
                continue
            new_pairs.append(
                Pair(
                    project=project,
                    prompt_id=prompt_id,
                    generator_a_id=gen_a,
                    generator_b_id=gen_b,
                    video_a_id=vid_a,
                    video_b_id=vid_b,
                )
            )
    Pair.objects.bulk_create(new_pairs, batch_size=_BATCH)
    return len(new_pairs)
