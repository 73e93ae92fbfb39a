"""python manage.py import_judgments PROJECT FILE [--placeholders] — judgments made elsewhere."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import project_from_arg
from annotation.models import ImportJob
from annotation.services.judgment_imports import judgments_import


class Command(BaseCommand):
    help = (
        "Import judgments (prompt_id, generator_a, generator_b, rater, one a/b/tie column per question key)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", help=".csv or .jsonl")
        parser.add_argument(
            "--placeholders", action="store_true",
            help="create missing prompts, generators and placeholder videos instead of reporting the rows",
        )
        parser.add_argument("--max-errors", type=int, default=50)

    def handle(self, *args, project: str, file: str, placeholders: bool, max_errors: int, **options) -> None:
        target = project_from_arg(project)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        with path.open("rb") as handle:
            job = judgments_import(project=target, file_obj=handle, file_name=path.name, placeholders=placeholders)
        if job.status == ImportJob.STATUS_FAILED:
            raise CommandError(f"{path.name} was refused: {job.error}")
        self.stdout.write(
            f"import #{job.pk}: {job.total_rows} rows, {job.created_rows} new, "
            f"{job.unchanged_rows} unchanged, {job.error_rows} bad"
        )
        for error in job.row_errors.all()[:max_errors]:
            self.stdout.write(f"  row {error.row}: {error.field or '-'}: {error.message}")
