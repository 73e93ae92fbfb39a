"""python manage.py compute_metrics PROJECT [--metric M ...] [--force] [--retry-failed]

Computes the project's missing metric scores in this process, with a progress bar, in batches
of ``--batch-size`` videos (CLIP frames are batched across each batch's videos). With
``--enqueue`` the batches go to the workers of the ``metrics`` queue instead. ``--device``
overrides METRICS_DEVICE (e.g. ``cuda``, ``cuda:1``, ``cpu``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from metrics.management.commands._project import project_arg
from metrics.registry import resolve_metrics
from metrics.selectors import metric_scores_missing
from metrics.services import metric_scores_compute, metric_scores_enqueue_missing


class Command(BaseCommand):
    help = "Compute the automatic metrics a project's ready videos lack."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--metric", action="append", dest="metrics", help="only this metric (repeatable)")
        parser.add_argument("--force", action="store_true", help="recompute scores that exist")
        parser.add_argument("--retry-failed", action="store_true", help="recompute failed scores")
        parser.add_argument("--batch-size", type=int, default=32, help="videos per batch (default 32)")
        parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: METRICS_DEVICE or auto)")
        parser.add_argument("--workers", type=int, default=None, help="decode threads (default: all cores)")
        parser.add_argument("--enqueue", action="store_true", help="send batches to the metrics queue instead")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_arg(options["project"])
        try:
            metrics = resolve_metrics(options["metrics"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        force, retry_failed = options["force"], options["retry_failed"]
        if options["enqueue"]:
            tasks = metric_scores_enqueue_missing(
                project_id=project.pk,
                metric_names=options["metrics"],
                force=force,
                retry_failed=retry_failed,
                batch_size=options["batch_size"],
            )
            self.stdout.write(f"enqueued {tasks} tasks for project {project.name!r}")
            return
        missing = metric_scores_missing(project_id=project.pk, metrics=metrics, force=force, retry_failed=retry_failed)
        ids = sorted(missing)
        if not ids:
            self.stdout.write(f"nothing to compute for project {project.name!r}")
            return
        totals = {"videos": 0, "stored": 0, "failed": 0}
        not_configured: dict[str, str] = {}
        size = max(1, options["batch_size"])
        with tqdm(total=len(ids), unit="video", disable=options["no_progress"], file=self.stderr) as bar:
            for start in range(0, len(ids), size):
                report = metric_scores_compute(
                    video_ids=ids[start : start + size],
                    metric_names=options["metrics"],
                    force=force,
                    retry_failed=retry_failed,
                    device=options["device"],
                    workers=options["workers"],
                    progress=bar.update,
                )
                for key in totals:
                    totals[key] += report[key]
                not_configured.update(report["not_configured"])
        self.stdout.write(
            f"project {project.name!r}: {totals['videos']} videos, {totals['stored']} scores stored, "
            f"{totals['failed']} failed"
        )
        for reason in sorted(set(not_configured.values())):
            names = sorted(name for name, r in not_configured.items() if r == reason)
            self.stderr.write(f"not configured ({', '.join(names)}): {reason}")
