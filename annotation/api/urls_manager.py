"""Project-manager and training-pipeline endpoints: catalog, judgments, labels, analysis, scores,
exports, and quality control (raters, gold answers). See annotation.api.manager."""

from django.urls import path

from annotation.api import raters
from annotation.api.manager import (
    analysis,
    catalog,
    exports,
    gold,
    judgments,
    labels,
    projects,
    schema_imports,  # noqa: F401 - registers OpenAPI extensions
    scores,
)

P = "projects/<id:project_id>/"
R = P + "raters/<id:rater_id>/"

urlpatterns = [
    path("projects/", projects.ProjectListCreateApi.as_view(), name="api-projects"),
    path(P, projects.ProjectDetailApi.as_view(), name="api-project"),
    path(P + "generators/", catalog.GeneratorListApi.as_view(), name="api-generators"),
    path(P + "prompts/", catalog.PromptListApi.as_view(), name="api-prompts"),
    path(P + "videos/", catalog.VideoListApi.as_view(), name="api-videos"),
    path(P + "pairs/", catalog.PairListApi.as_view(), name="api-pairs"),
    path("pairs/<id:pair_id>/", catalog.PairDetailApi.as_view(), name="api-pair"),
    path(P + "pairs/gold/import/", gold.GoldImportApi.as_view(), name="api-pairs-gold-import"),
    path(P + "raters/", raters.ProjectRatersApi.as_view(), name="api-project-raters"),
    path(R + "pause/", raters.RaterPauseApi.as_view(), name="api-rater-pause"),
    path(R + "resume/", raters.RaterResumeApi.as_view(), name="api-rater-resume"),
    path(R + "exclude/", raters.RaterExcludeApi.as_view(), name="api-rater-exclude"),
    path(R + "include/", raters.RaterIncludeApi.as_view(), name="api-rater-include"),
    path(P + "judgments/", judgments.JudgmentListApi.as_view(), name="api-judgments"),
    path(P + "judgments/import/", judgments.JudgmentImportApi.as_view(), name="api-judgments-import"),
    path(P + "labels/", labels.LabelListApi.as_view(), name="api-labels"),
    path(P + "analysis/", analysis.AnalysisApi.as_view(), name="api-analysis"),
    path(P + "scores/", scores.ScoreListApi.as_view(), name="api-scores"),
    path(P + "scores/import/", scores.ScoreImportApi.as_view(), name="api-scores-import"),
    path(P + "exports/", exports.ExportApi.as_view(), name="api-exports"),
    path(P + "exports/jobs/", exports.ExportJobListApi.as_view(), name="api-export-jobs"),
    path(P + "exports/jobs/<id:job_id>/", exports.ExportJobDetailApi.as_view(), name="api-export-job"),
    path(
        P + "exports/jobs/<id:job_id>/download/",
        exports.ExportJobDownloadApi.as_view(),
        name="api-export-job-download",
    ),
]
