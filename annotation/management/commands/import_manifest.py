"""python manage.py import_manifest PROJECT FILE — import a CSV / JSON Lines manifest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.management.commands._common import project_from_arg
from annotation.models import ImportJob
from annotation.selectors.imports import import_report
from annotation.services.imports import manifest_import


class Command(BaseCommand):
    help = "Import a manifest (prompt_id, prompt, generator, video, optional tags) into a project."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", help="manifest file (.csv or .jsonl)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--max-errors", type=int, default=50, help="bad rows to print (default 50)")

    def handle(self, *args, project: str, file: str, no_progress: bool, max_errors: int, **options) -> None:
        target = project_from_arg(project)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        with path.open("rb") as handle:
            total = sum(1 for line in handle if line.strip())
        bar = tqdm(total=total, unit="row", desc="validating", disable=no_progress or None)
        done = 0

        def progress(rows: int) -> None:
            nonlocal done
            bar.update(rows - done)
            done = rows

        with path.open("rb") as handle:
            job = manifest_import(project=target, file_obj=handle, file_name=path.name, progress=progress)
        bar.close()
        if job.status == ImportJob.STATUS_FAILED:
            raise CommandError(f"{path.name} was refused: {job.error}")
        report = import_report(job=job, max_rows=max_errors)
        self.stdout.write(
            f"import #{job.pk}: {job.total_rows} rows, {job.created_rows} new, "
            f"{job.unchanged_rows} unchanged, {job.error_rows} bad"
        )
        for error in report["row_errors"]:
            self.stdout.write(f"  row {error['row']}: {error['field'] or '-'}: {error['message']}")
        if job.error_rows > max_errors:
            self.stdout.write(f"  … and {job.error_rows - max_errors} more (see the import page)")
        media = report["media"]
        self.stdout.write(f"media: {media['ready']} ready, {media['pending']} pending, {media['failed']} failed")
        for failure in report["media_failures"]:
            self.stdout.write(f"  row {failure['row']}: video: {failure['message']}")
