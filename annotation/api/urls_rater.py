"""Rater endpoints: leasing the next pair, submitting a judgment, skipping."""

from django.urls import path

from annotation.api import rater

urlpatterns = [
    path(
        "projects/<id:project_id>/assignments/next/",
        rater.AssignmentNextApi.as_view(),
        name="api-assignment-next",
    ),
    path("assignments/<id:assignment_id>/judgment/", rater.JudgmentSubmitApi.as_view(), name="api-judgment-submit"),
    path("assignments/<id:assignment_id>/skip/", rater.AssignmentSkipApi.as_view(), name="api-assignment-skip"),
]
