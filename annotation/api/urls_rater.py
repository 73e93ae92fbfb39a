"""Rater endpoints (assignments, judgments, skips), and the managers' quality-control endpoints:
raters (list, add, pause, resume, exclude, include) and the gold-answers import."""

from django.urls import path

from annotation.api import rater, raters
from annotation.api.manager import gold

R = "projects/<id:project_id>/raters/<id:rater_id>/"

urlpatterns = [
    path(
        "projects/<id:project_id>/assignments/next/",
        rater.AssignmentNextApi.as_view(),
        name="api-assignment-next",
    ),
    path("assignments/<id:assignment_id>/judgment/", rater.JudgmentSubmitApi.as_view(), name="api-judgment-submit"),
    path("assignments/<id:assignment_id>/skip/", rater.AssignmentSkipApi.as_view(), name="api-assignment-skip"),
    path("projects/<id:project_id>/raters/", raters.ProjectRatersApi.as_view(), name="api-project-raters"),
    path(R + "pause/", raters.RaterPauseApi.as_view(), name="api-rater-pause"),
    path(R + "resume/", raters.RaterResumeApi.as_view(), name="api-rater-resume"),
    path(R + "exclude/", raters.RaterExcludeApi.as_view(), name="api-rater-exclude"),
    path(R + "include/", raters.RaterIncludeApi.as_view(), name="api-rater-include"),
    path("projects/<id:project_id>/pairs/gold/import/", gold.GoldImportApi.as_view(), name="api-pairs-gold-import"),
]
