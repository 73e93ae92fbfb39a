"""python manage.py load_fetv [--data DIR] — the FETV human ratings as a VidJudge project.

FETV rates each video on its own (1–5). For one rater, one prompt and two generators X, Y the
rater prefers X on a question when X's rating is higher, Y when lower, a tie when equal — 619
prompts × 6 generator pairs × 3 raters = 11,142 judgments per question, each with the three
questions mapped onto the rubric (alignment → text_match, static_quality → visual_appeal,
temporal_quality → consistency). The paper's automatic scores are imported as external metric
scores. Everything goes through the ordinary import paths; videos are placeholders.
"""

from __future__ import annotations

import csv
import io
import json
from itertools import combinations
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation.models import DEFAULT_RUBRIC, ImportJob, Membership, Project
from annotation.services.judgment_imports import judgments_import
from annotation.services.projects import membership_set, project_create

FETV_PROJECT = "FETV human ratings (real data)"
DEFAULT_DIR = Path(settings.BASE_DIR) / "data" / "fetv"
QUESTION_MAP = {"alignment": "text_match", "static_quality": "visual_appeal", "temporal_quality": "consistency"}
SCORE_COLUMNS = ("CLIPScore", "CLIPScore-ft", "BLIPScore", "UMTScore")


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def fetv_judgments_csv(data_dir: Path) -> bytes:
    """FETV's absolute ratings as a pairwise judgments file (CSV) in VidJudge's import format."""
    prompts = {p["idx"]: p["prompt"] for p in _jsonl(data_dir / "prompts.jsonl")}
    ratings: dict[tuple[str, int], dict[str, dict]] = {}
    for r in _jsonl(data_dir / "human_ratings.jsonl"):
        ratings.setdefault((r["rater"], r["idx"]), {})[r["model"]] = r
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["prompt_id", "prompt", "generator_a", "generator_b", "rater", *QUESTION_MAP.values()])
    for (rater, idx), by_model in sorted(ratings.items()):
        for gen_a, gen_b in combinations(sorted(by_model), 2):
            answers = []
            for source in QUESTION_MAP:
                x, y = by_model[gen_a][source], by_model[gen_b][source]
                answers.append("a" if x > y else "b" if x < y else "tie")
            writer.writerow([idx, prompts[idx], gen_a, gen_b, rater, *answers])
    return out.getvalue().encode()


def fetv_scores_csv(data_dir: Path) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["prompt_id", "generator", "metric", "value", "version"])
    for row in _jsonl(data_dir / "auto_scores.jsonl"):
        for metric in SCORE_COLUMNS:
            if row.get(metric) is not None:
                writer.writerow(
                    [row["idx"], row["model"], f"fetv_{metric.lower().replace('-', '_')}", row[metric], "fetv-paper"]
                )
    return out.getvalue().encode()


def load_fetv_project(*, manager=None, data_dir: Path = DEFAULT_DIR, stdout=None) -> Project:
    """Create (or complete) the FETV project; idempotent."""
    if not (data_dir / "human_ratings.jsonl").is_file():
        raise CommandError(f"no FETV data in {data_dir}")
    project = Project.objects.filter(name=FETV_PROJECT).first()
    if project is None:
        rubric = [q for q in DEFAULT_RUBRIC if q["key"] in QUESTION_MAP.values()]
        project = project_create(
            name=FETV_PROJECT,
            created_by=manager,
            rubric=rubric,
            overlap=3,
            description="Real human ratings from FETV (Liu et al., NeurIPS 2023); videos are placeholders.",
        )
    if manager is not None:
        membership_set(project=project, user=manager, role=Membership.ROLE_MANAGER)
    job = judgments_import(
        project=project,
        file_obj=io.BytesIO(fetv_judgments_csv(data_dir)),
        file_name="fetv_judgments.csv",
        user=manager,
        placeholders=True,
    )
    if job.status != ImportJob.STATUS_DONE or job.error_rows:
        raise CommandError(f"FETV judgments import went wrong: {job.error or job.row_errors.first()}")
    if stdout:
        stdout.write(f"FETV judgments: {job.created_rows} new, {job.unchanged_rows} unchanged")
    try:
        from metrics.services import metric_scores_import  # noqa: PLC0415
    except ImportError:
        return project
    report = metric_scores_import(
        project=project, file_obj=io.BytesIO(fetv_scores_csv(data_dir)), file_name="fetv_auto_scores.csv", user=manager
    )
    if stdout:
        stdout.write(f"FETV automatic scores: {report}")
    return project


class Command(BaseCommand):
    help = "Load the FETV human ratings (shipped in data/fetv) as a project."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", default=str(DEFAULT_DIR), help="folder with the FETV JSON Lines files")
        parser.add_argument("--manager", help="username to make manager of the project")

    def handle(self, *args, data: str, manager: str | None, **options) -> None:
        from django.contrib.auth import get_user_model  # noqa: PLC0415

        user = None
        if manager:
            user = get_user_model().objects.filter(username=manager).first()
            if user is None:
                raise CommandError(f"no user {manager!r}")
        project = load_fetv_project(manager=user, data_dir=Path(data), stdout=self.stdout)
        self.stdout.write(f"project #{project.pk}: {project.name}")
