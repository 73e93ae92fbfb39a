"""Reads about projects and who may see them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.models import Membership, Project

MAX_DB_ID = 2**63 - 1  # ids beyond a bigint (from a URL) match nothing instead of erroring


def project_role(*, project_id: int, user: AbstractBaseUser) -> str | None:
    """The user's role in the project: "manager", "rater", or None. Superusers manage all."""
    if not user.is_authenticated or not 0 < int(project_id) <= MAX_DB_ID:
        return None
    if user.is_superuser:
        return Membership.ROLE_MANAGER
    return (
        Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
    )


def projects_for_user(*, user: AbstractBaseUser, role: str | None = None) -> QuerySet[Project]:
    if user.is_superuser and role in (None, Membership.ROLE_MANAGER):
        return Project.objects.all()
    qs = Project.objects.filter(memberships__user=user)
    if role:
        qs = qs.filter(memberships__role=role)
    return qs.distinct()
