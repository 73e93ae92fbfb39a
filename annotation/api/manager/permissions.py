"""Who may use the manager API beyond one project's URL (see the package docstring)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from annotation.api.permissions import IsProjectManager
from annotation.models import Membership, Pair
from annotation.selectors.projects import project_role

#: Largest value of a bigint primary key; a larger id in a URL names nothing.
MAX_ID = 2**63 - 1


def id_in_range(value: object) -> bool:
    try:
        return 0 < int(value) <= MAX_ID  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


class IsManager(IsProjectManager):
    """``IsProjectManager`` that answers 403 for an id beyond the bigint range instead of
    letting the database refuse it (a 500)."""

    def has_permission(self, request, view) -> bool:
        project_id = view.kwargs.get("project_id")
        if project_id is not None and not id_in_range(project_id):
            return False
        return super().has_permission(request, view)


def user_may_create_projects(user) -> bool:  # noqa: ANN001 - any user model
    """Staff users, superusers and users who already manage a project."""
    if not user or not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role=Membership.ROLE_MANAGER).exists()


class IsProjectCreator(BasePermission):
    message = "Only staff users and project managers may list or create projects."

    def has_permission(self, request, view) -> bool:
        return user_may_create_projects(request.user)


class IsPairManager(BasePermission):
    """A manager of the pair's project (URL kwarg ``pair_id``); 403 for an unknown pair too."""

    message = "Only a manager of this pair's project may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not id_in_range(view.kwargs.get("pair_id")):
            return False
        project_id = Pair.objects.filter(pk=view.kwargs.get("pair_id")).values_list("project_id", flat=True).first()
        if project_id is None:
            return bool(user.is_superuser)  # a superuser gets the view's 404
        return project_role(project_id=project_id, user=user) == Membership.ROLE_MANAGER
