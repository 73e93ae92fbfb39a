"""Reads about projects and who may see them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.models import Membership, Project

MAX_DB_ID = 2**63 - 1  # ids beyond a bigint (from a URL) match nothing instead of erroring


def project_role(*, project_id: int, user: AbstractBaseUser) -> str | None:
    """The user's role in the project: "manager", "rater", or None. Superusers (admins) manage
    every project, even one where they are also a rater."""
    if not user.is_authenticated or not 0 < int(project_id) <= MAX_DB_ID:
        return None
    if user.is_superuser:
        return Membership.ROLE_MANAGER
    return (
        Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
    )


def projects_for_user(*, user: AbstractBaseUser, role: str | None = None) -> QuerySet[Project]:
    """The projects where ``user`` has ``role`` (any role when None). Superusers (admins) manage
    every project; as raters they see only those they are raters of."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser and role in (None, Membership.ROLE_MANAGER):
        return Project.objects.all()
    # One filter() call: the user and the role must hold on the same membership (two calls
    # would join memberships twice and match a project where someone else has the role).
    conditions = {"memberships__user": user}
    if role:
        conditions["memberships__role"] = role
    return Project.objects.filter(**conditions).distinct()
