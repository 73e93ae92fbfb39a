"""``python manage.py add_raters PROJECT NAME…``: make accounts raters of a project.

PROJECT is a project id or name. Missing accounts are created; each new rater's generated
password is printed once (it is stored only hashed).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from annotation.services.raters import RATER_CREATED, RATER_INVALID, RATER_UNKNOWN, raters_add


class Command(BaseCommand):
    help = "Add raters to a project, creating missing accounts (their passwords are printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="Project id or name.")
        parser.add_argument("names", nargs="+", metavar="NAME", help="Usernames.")
        parser.add_argument(
            "--existing-only", action="store_true", help="Do not create accounts; only add existing ones."
        )

    def handle(self, *args, project: str, names: list[str], existing_only: bool, **options) -> None:
        found = Project.objects.filter(pk=int(project)).first() if project.isdigit() else None
        found = found or Project.objects.filter(name=project).first()
        if found is None:
            raise CommandError(f"no project with id or name {project!r}")
        failed = False
        for result in raters_add(project=found, usernames=names, create_missing=not existing_only):
            if result.status == RATER_CREATED:
                self.stdout.write(f"{result.username}\tcreated\tpassword: {result.password}")
            else:
                line = f"{result.username}\t{result.status}" + (f"\t{result.message}" if result.message else "")
                if result.status in (RATER_INVALID, RATER_UNKNOWN):
                    failed = True
                    self.stderr.write(line)
                else:
                    self.stdout.write(line)
        if failed:
            raise CommandError("some names were not added (see above)")
