"""Import benchmark: a 10,000-row manifest of videos already on disk, validated and stored,
media work queued (to the real Redis broker), on the real PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_import.py [--rows 10000]
Target: under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import peak_rss_mb, recreate_postgres_db, table, write_result  # noqa: E402

BROKER = "redis://127.0.0.1:6379/13"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--generators", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidjudge-bench-import-"))
    os.environ.update({
        "DATABASE_URL": recreate_postgres_db("vidjudge_bench_import"),
        "CELERY_BROKER_URL": BROKER,
        "IMPORT_ROOTS": str(work),
        "MEDIA_ROOT": str(work / "media"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    })
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotation.models import Video
    from annotation.services.imports import manifest_import
    from annotation.services.projects import project_create

    # One real tiny clip, hard-linked under 10,000 names: "videos already on disk".
    seed = work / "seed.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x96:d=1:r=24",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", str(seed)], check=True)
    lines = ["prompt_id,prompt,generator,video,tags"]
    for i in range(args.rows):
        path = work / "videos" / f"{i // 1000:02d}" / f"{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(seed, path)
        prompt = i // args.generators
        lines.append(f"p{prompt},a prompt number {prompt} about foxes,gen{i % args.generators},{path},motion=fast")
    manifest = ("\n".join(lines) + "\n").encode()

    project = project_create(name="bench import")
    t0 = time.perf_counter()
    job = manifest_import(project=project, file_obj=io.BytesIO(manifest), file_name="bench.csv")
    first = time.perf_counter() - t0
    queued = redis.Redis.from_url(BROKER).llen("media")
    t0 = time.perf_counter()
    again = manifest_import(project=project, file_obj=io.BytesIO(manifest), file_name="bench.csv")
    second = time.perf_counter() - t0
    assert job.created_rows == args.rows and job.error_rows == 0, (job.created_rows, job.error_rows)
    assert again.unchanged_rows == args.rows and again.created_rows == 0
    assert Video.objects.filter(project=project).count() == args.rows
    assert queued == args.rows, f"{queued} media messages queued for {args.rows} videos"

    rows = [
        ("first import (validate, store, queue)", args.rows, f"{first:.2f}", f"{args.rows / first:,.0f}"),
        ("re-import (all unchanged)", args.rows, f"{second:.2f}", f"{args.rows / second:,.0f}"),
    ]
    print(table(rows, ("run", "rows", "seconds", "rows/s")))
    print(f"media tasks queued in Redis: {queued}; peak RSS {peak_rss_mb():.0f} MB; target < 60 s")
    path = write_result("import", {"rows": args.rows, "first_import_s": round(first, 3),
                                   "reimport_s": round(second, 3), "queued": queued,
                                   "peak_rss_mb": round(peak_rss_mb(), 1), "target_s": 60})
    print(f"wrote {path}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
