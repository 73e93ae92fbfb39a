"""python manage.py import_gold PROJECT FILE — mark pairs as gold with their accepted answers."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import project_from_arg
from annotation.models import ImportJob
from annotation.services.gold_imports import gold_import


class Command(BaseCommand):
    help = (
        "Mark existing pairs as gold: prompt_id, generator_a, generator_b and one column per question key "
        "with the accepted answer(s) relative to that row's generators (a, b, tie, or a|tie)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", help=".csv or .jsonl")
        parser.add_argument("--max-errors", type=int, default=50)

    def handle(self, *args, project: str, file: str, max_errors: int, **options) -> None:
        target = project_from_arg(project)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        with path.open("rb") as handle:
            job = gold_import(project=target, file_obj=handle, file_name=path.name)
        if job.status == ImportJob.STATUS_FAILED:
            raise CommandError(f"{path.name} was refused: {job.error}")
        self.stdout.write(
            f"import #{job.pk}: {job.total_rows} rows, {job.created_rows} pairs marked or changed, "
            f"{job.unchanged_rows} unchanged, {job.error_rows} bad"
        )
        for error in job.row_errors.all()[:max_errors]:
            self.stdout.write(f"  row {error.row}: {error.field or '-'}: {error.message}")
