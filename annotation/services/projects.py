"""Writes for projects, their rubric and their members."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.models import CANONICAL_ANSWERS, DEFAULT_RUBRIC, Membership, Project, Question


@transaction.atomic
def project_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None = None,
    rubric: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Project:
    """Create a project with the default rubric (or ``rubric``); its creator becomes a manager."""
    project = Project.objects.create(name=name, created_by=created_by, **fields)
    questions = rubric if rubric is not None else DEFAULT_RUBRIC
    Question.objects.bulk_create(
        Question(
            project=project,
            key=q["key"],
            text=q["text"],
            help_text=q.get("help_text", ""),
            order=q.get("order", index),
            allowed=list(q.get("allowed", CANONICAL_ANSWERS)),
            required=q.get("required", True),
        )
        for index, q in enumerate(questions)
    )
    if created_by is not None:
        membership_set(project=project, user=created_by, role=Membership.ROLE_MANAGER)
    return project


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` ``role`` in ``project`` (idempotent; a role change is saved)."""
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership
