"""Rater endpoints (assignments, judgments, skips) and the managers' raters endpoint."""

from django.urls import path

from annotation.api import rater, raters

urlpatterns = [
    path(
        "projects/<id:project_id>/assignments/next/",
        rater.AssignmentNextApi.as_view(),
        name="api-assignment-next",
    ),
    path("assignments/<id:assignment_id>/judgment/", rater.JudgmentSubmitApi.as_view(), name="api-judgment-submit"),
    path("assignments/<id:assignment_id>/skip/", rater.AssignmentSkipApi.as_view(), name="api-assignment-skip"),
    path("projects/<id:project_id>/raters/", raters.ProjectRatersApi.as_view(), name="api-project-raters"),
]
