"""Reads about projects and who may see them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.models import Membership, Project


def project_role(*, project_id: int, user: AbstractBaseUser) -> str | None:
    """The user's role in the project: "manager", "rater", or None. Superusers manage all."""
    if not user.is_authenticated:
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
