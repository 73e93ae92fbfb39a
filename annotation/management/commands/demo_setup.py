"""python manage.py demo_setup — build the demo: accounts, synthetic videos, a project, pairs.

Idempotent: running it again changes nothing. The accounts (password "demo") are for local
demos only; never run this against a production database.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import ImportJob, Membership, Project
from annotation.services.imports import manifest_import
from annotation.services.pairs import pairs_generate
from annotation.services.projects import membership_set, project_create
from config.tasks import wait_for_in_process_tasks

DEMO_PROJECT = "Demo: three synthetic generators"
GOLD_GENERATORS = ("Aurora-Smooth", "Jitterbug")  # (better, worse) in the demo's gold pairs
DEMO_PASSWORD = "demo"  # noqa: S105 (documented demo-only credentials)
DEMO_INSTRUCTIONS = (
    "Watch both videos (they play in sync), then answer every question: which video is better on "
    "that aspect, or Tie when you cannot tell them apart. Judge only what you see; the prompt is drawn "
    "on every frame."
)


class Command(BaseCommand):
    help = "Create the demo project, its synthetic videos and the demo accounts (demo only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_setup creates accounts with the password 'demo': refusing with DEBUG off")
        from annotation.demo_media import write_demo_manifest  # noqa: PLC0415

        users = {name: self._user(name, superuser=(name == "manager")) for name in ("manager", "rater1", "rater2")}
        project = Project.objects.filter(name=DEMO_PROJECT).first() or project_create(
            name=DEMO_PROJECT, created_by=users["manager"], overlap=2, instructions=DEMO_INSTRUCTIONS
        )
        membership_set(project=project, user=users["manager"], role=Membership.ROLE_MANAGER)
        for name in ("rater1", "rater2"):
            membership_set(project=project, user=users[name], role=Membership.ROLE_RATER)

        root = Path(settings.IMPORT_ROOTS[0]) / "demo"
        self.stdout.write(f"rendering demo videos under {root} …")
        manifest = write_demo_manifest(root)
        with manifest.open("rb") as handle:
            job = manifest_import(project=project, file_obj=handle, file_name=manifest.name)
        if job.status != ImportJob.STATUS_DONE or job.error_rows:
            raise CommandError(f"demo import went wrong: {job.error or job.row_errors.first()}")
        self.stdout.write(f"import: {job.created_rows} new, {job.unchanged_rows} unchanged; processing media …")
        wait_for_in_process_tasks()
        created = pairs_generate(project=project)
        self.stdout.write(f"{created} new pair(s); {project.pairs.count()} in all")
        self._quality_control(project)
        self._load_fetv(users["manager"])
        self.stdout.write(
            self.style.SUCCESS(
                "Demo accounts (local demo only): manager / demo (project manager), "
                "rater1 / demo and rater2 / demo (raters)"
            )
        )

    def _user(self, name: str, *, superuser: bool):
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=name, defaults={"is_staff": superuser, "is_superuser": superuser}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    def _quality_control(self, project: Project) -> None:
        """Two gold pairs (the smooth generator beats the jittering one on visual appeal and
        overall: the demo's clips make that plain), and a crowd invite link with a small quota."""
        from annotation.services.crowd import project_crowd_settings_update, project_invite_rotate  # noqa: PLC0415
        from annotation.services.quality import pair_gold_set  # noqa: PLC0415

        if not project.pairs.filter(is_gold=True).exists():
            pairs = (
                project.pairs.filter(generator_a__name__in=GOLD_GENERATORS, generator_b__name__in=GOLD_GENERATORS)
                .select_related("generator_a")
                .order_by("id")[:2]
            )
            for pair in pairs:
                better = "a" if pair.generator_a.name == GOLD_GENERATORS[0] else "b"
                pair_gold_set(pair=pair, gold_answers={"visual_appeal": better, "final_verdict": better})
        if not project.invite_token:
            project_invite_rotate(project=project)
            project_crowd_settings_update(
                project=project, rater_quota=10, completion_code="DEMO-DONE", completion_url=""
            )
        project.refresh_from_db()
        self.stdout.write(
            f"crowd invite link (quota 10, code DEMO-DONE): "
            f"/join/{project.invite_token}/?PROLIFIC_PID=demo-worker-1"
        )

    def _load_fetv(self, manager) -> None:
        """The FETV human ratings as a second project, when that loader is installed."""
        try:
            from annotation.management.commands.load_fetv import load_fetv_project  # noqa: PLC0415
        except ImportError:
            return
        project = load_fetv_project(manager=manager, stdout=self.stdout)
        self.stdout.write(f"FETV project: {project.name}")
