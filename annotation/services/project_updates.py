"""Changing a project's settings and rubric (the API's PATCH /projects/{id}/).

Rubric changes are upserts by question key: a listed key that exists is updated (text, help
text, order, required; ``allowed`` only while the project has no judgments, since stored answers
were checked against it), a new key is added. Questions are never deleted here: judgments refer
to them by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotation.models import CANONICAL_ANSWERS, Judgment, Project, Question

PROJECT_FIELDS = (
    "name", "description", "instructions", "overlap", "lease_seconds", "require_full_watch",
    # quality control (annotation.services.quality) and the crowd quota
    "gold_rate", "gold_min", "gold_accuracy_threshold", "too_fast_seconds",
    "rater_quota", "completion_code", "completion_url",
)


class RubricChangeRefused(ValueError):
    """A rubric change that would contradict stored judgments."""


@transaction.atomic
def project_update(
    *, project: Project, fields: dict[str, Any], questions: Sequence[dict[str, Any]] | None = None
) -> Project:
    """Update ``fields`` (a subset of :data:`PROJECT_FIELDS`, validated by the caller; the database
    checks the ranges too) and upsert ``questions``."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    changed = [name for name in PROJECT_FIELDS if name in fields and getattr(project, name) != fields[name]]
    for name in changed:
        setattr(project, name, fields[name])
    if changed:
        project.save(update_fields=[*changed, "updated_at"])
    if questions:
        _rubric_upsert(project, questions)
    return project


def _rubric_upsert(project: Project, questions: Sequence[dict[str, Any]]) -> None:
    existing = {q.key: q for q in Question.objects.filter(project=project)}
    judged = Judgment.objects.filter(project=project).exists()
    next_order = max((q.order for q in existing.values()), default=-1) + 1
    new: list[Question] = []
    for data in questions:
        key = data["key"]
        allowed = list(data["allowed"]) if data.get("allowed") is not None else None
        question = existing.get(key)
        if question is None:
            new.append(Question(
                project=project,
                key=key,
                text=data.get("text") or key,
                help_text=data.get("help_text", ""),
                order=data.get("order", next_order + len(new)),
                allowed=allowed or list(CANONICAL_ANSWERS),
                required=data.get("required", True),
            ))
            continue
        updates = [name for name in ("text", "help_text", "order", "required")
                   if name in data and getattr(question, name) != data[name]]
        for name in updates:
            setattr(question, name, data[name])
        if allowed is not None and sorted(allowed) != sorted(question.allowed):
            if judged:
                raise RubricChangeRefused(
                    f"the allowed answers of '{key}' cannot change once the project has judgments"
                )
            question.allowed = allowed
            updates.append("allowed")
        if updates:
            question.save(update_fields=updates)
    Question.objects.bulk_create(new)
