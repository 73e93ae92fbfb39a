"""python manage.py import_scores PROJECT FILE

Imports per-video scores computed elsewhere (CSV or JSON Lines with prompt_id, generator,
metric, value and optional version). Bad rows are reported one by one and never stop the good
ones; the command exits non-zero when the file was refused or any row had an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from metrics.management.commands._project import project_arg
from metrics.services import metric_scores_import


class Command(BaseCommand):
    help = "Import external metric scores (CSV or JSON Lines) into a project."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("file", help="a .csv or .jsonl file")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_arg(options["project"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        with path.open("rb") as handle:
            report = metric_scores_import(project=project, file_obj=handle, file_name=path.name)
        if report["status"] == "failed":
            raise CommandError(f"file refused: {report['error']}")
        self.stdout.write(
            f"{report['total_rows']} rows: {report['created_rows']} created, {report['updated_rows']} updated, "
            f"{report['unchanged_rows']} unchanged, {report['error_rows']} with errors (import #{report['job_id']})"
        )
        for error in report["errors"]:
            field = f" [{error['field']}]" if error["field"] else ""
            self.stderr.write(f"row {error['row']}{field}: {error['message']}")
        if report["error_rows"]:
            raise CommandError(f"{report['error_rows']} rows had errors; the other rows were imported")
