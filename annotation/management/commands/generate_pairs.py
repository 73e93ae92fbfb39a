"""python manage.py generate_pairs PROJECT [--generators NAME …] — create the missing pairs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import project_from_arg
from annotation.models import Generator
from annotation.services.pairs import pairs_generate


class Command(BaseCommand):
    help = "Generate every pair of ready videos per prompt (only the new ones)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--generators", nargs="+", help="generator names (default: all)")

    def handle(self, *args, project: str, generators: list[str] | None, **options) -> None:
        target = project_from_arg(project)
        ids = None
        if generators:
            found = dict(Generator.objects.filter(project=target, name__in=generators).values_list("name", "id"))
            missing = sorted(set(generators) - found.keys())
            if missing:
                raise CommandError(f"unknown generator(s) in {target.name}: {', '.join(missing)}")
            ids = list(found.values())
        created = pairs_generate(project=target, generator_ids=ids)
        self.stdout.write(f"{created} new pair(s) in {target.name}")
