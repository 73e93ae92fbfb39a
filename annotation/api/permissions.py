"""Per-project roles for the API. The project id comes from the URL kwarg ``project_id``."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from annotation.models import Membership
from annotation.selectors.projects import project_role


class IsProjectManager(BasePermission):
    message = "Only a manager of this project may do this."

    def has_permission(self, request, view) -> bool:
        project_id = view.kwargs.get("project_id")
        if project_id is None:
            return bool(request.user and request.user.is_authenticated)
        return project_role(project_id=project_id, user=request.user) == Membership.ROLE_MANAGER


class IsProjectMember(BasePermission):
    message = "You are not a member of this project."

    def has_permission(self, request, view) -> bool:
        project_id = view.kwargs.get("project_id")
        return project_id is not None and project_role(project_id=project_id, user=request.user) is not None
