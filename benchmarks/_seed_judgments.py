"""Seed a project with many judgments fast (PostgreSQL COPY), for the export benchmark.

Layout: 4 generators, every prompt judged on its 6 generator pairs by 3 distinct raters
(of 300; 10 marked excluded), answers to the 6 default questions drawn with a per-pair
preference so that majorities are meaningful. Triggers and foreign-key checks are off during
COPY (``session_replication_role = replica``): the rows are generated valid.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator
from itertools import combinations

GENERATORS = ("gen-alpha", "gen-beta", "gen-gamma", "gen-delta")
RATERS = 300
EXCLUDED = 10
OVERLAP = 3
BATCH = 100_000


def _copy(cursor, table: str, columns: tuple[str, ...], rows: Iterator[str]) -> None:
    buffer = io.StringIO()
    count = 0

    def flush() -> None:
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
        buffer.seek(0)
        buffer.truncate()

    for line in rows:
        buffer.write(line)
        count += 1
        if count % BATCH == 0:
            flush()
    flush()


def seed(*, judgments: int, log: Callable[[str], None] = print) -> dict:
    """Create the project and ``judgments`` judgments; returns ids and counts."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from annotation.models import Generator, Membership, Question
    from annotation.services.projects import project_create

    rng = random.Random(7)
    user_model = get_user_model()
    manager = user_model.objects.create_user("bench-manager", password="bench-password")
    project = project_create(name="bench export", created_by=manager)
    token = Token.objects.create(user=manager)
    keys = list(Question.objects.filter(project=project).values_list("key", flat=True))
    generators = [Generator.objects.create(project=project, name=name) for name in GENERATORS]
    raters = user_model.objects.bulk_create(user_model(username=f"bench-rater-{i}") for i in range(RATERS))
    Membership.objects.bulk_create(
        Membership(project=project, user=u, role=Membership.ROLE_RATER, excluded=i < EXCLUDED)
        for i, u in enumerate(raters)
    )
    rater_ids = [u.pk for u in raters]
    gen_pairs = list(combinations(sorted(g.pk for g in generators), 2))
    per_prompt = len(gen_pairs) * OVERLAP
    n_prompts = -(-judgments // per_prompt)
    pid = project.pk
    now = "2026-11-24 12:00:00+00"

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_prompt")
        prompt0 = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_video")
        video0 = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_pair")
        pair0 = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_judgment")
        judgment0 = cursor.fetchone()[0] + 1

        log(f"seeding {n_prompts} prompts, {n_prompts * len(generators)} videos, "
            f"{n_prompts * len(gen_pairs)} pairs, {judgments} judgments")
        _copy(cursor, "annotation_prompt", ("id", "project_id", "external_id", "text", "tags"), (
            f"{prompt0 + i}\t{pid}\tP{i:07d}\ta video of fox number {i} running through fresh snow at dawn\t{{}}\n"
            for i in range(n_prompts)
        ))

        def video_id(prompt_index: int, gen_index: int) -> int:
            return video0 + prompt_index * len(generators) + gen_index

        gen_index = {g.pk: i for i, g in enumerate(generators)}
        _copy(cursor, "annotation_video", (
            "id", "public_id", "project_id", "prompt_id", "generator_id", "source", "original", "browser", "poster",
            "sha256", "transcoded", "status", "error", "codec", "pix_fmt", "created_at", "updated_at",
        ), (
            f"{video_id(i, j)}\t{_uuid(rng)}\t{pid}\t{prompt0 + i}\t{g.pk}\t/data/videos/{g.name}/P{i:07d}.mp4"
            f"\t\t\t\t\tf\tready\t\t\t\t{now}\t{now}\n"
            for i in range(n_prompts) for j, g in enumerate(generators)
        ))
        _copy(cursor, "annotation_pair", (
            "id", "project_id", "prompt_id", "generator_a_id", "generator_b_id", "video_a_id", "video_b_id",
            "is_gold", "gold_answers", "judgment_count", "lease_count", "created_at",
        ), (
            f"{pair0 + i * len(gen_pairs) + k}\t{pid}\t{prompt0 + i}\t{a}\t{b}\t{video_id(i, gen_index[a])}"
            f"\t{video_id(i, gen_index[b])}\tf\t{{}}\t{OVERLAP}\t0\t{now}\n"
            for i in range(n_prompts) for k, (a, b) in enumerate(gen_pairs)
        ))

        def judgment_rows() -> Iterator[str]:
            n = 0
            for p in range(n_prompts * len(gen_pairs)):
                lean = rng.random()
                for rater in rng.sample(rater_ids, OVERLAP):
                    if n >= judgments:
                        return
                    answers = {k: ("a" if rng.random() < lean else rng.choice(("b", "tie"))) for k in keys}
                    left = "t" if rng.random() < 0.5 else "f"
                    yield (f"{judgment0 + n}\t{pid}\t{pair0 + p}\t{rater}\t{json.dumps(answers)}\t{left}"
                           f"\t{rng.randint(4000, 60000)}\t{rng.uniform(2, 9):.2f}\t{rng.uniform(2, 9):.2f}"
                           f"\tapp\t[]\t{now}\t{now}\n")
                    n += 1

        _copy(cursor, "annotation_judgment", (
            "id", "project_id", "pair_id", "rater_id", "answers", "left_is_a", "duration_ms", "watch_a_seconds",
            "watch_b_seconds", "source", "flags", "created_at", "updated_at",
        ), judgment_rows())
        for table in ("annotation_prompt", "annotation_video", "annotation_pair", "annotation_judgment"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"project_id": pid, "token": token.key, "judgments": judgments, "prompts": n_prompts,
            "pairs": n_prompts * len(gen_pairs), "raters": RATERS, "excluded_raters": EXCLUDED}


def _uuid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
