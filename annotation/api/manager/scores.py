"""Metric scores: read them, and import scores computed elsewhere (through the metrics app)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, INVALID_CURSOR, PROJECT_ERRORS, ErrorSerializer
from annotation.api.pagination import IdCursorPagination
from annotation.models import Project
from annotation.selectors.catalog import ScoresUnavailable, scores_list
from annotation.uploads import TOO_LARGE, UploadSerializer

UNAVAILABLE = OpenApiResponse(ErrorSerializer, description="The metrics app is not installed.")


class MetricsUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "metric scores are unavailable on this server"


class ScoreFilterSerializer(serializers.Serializer):
    metric = serializers.CharField(required=False, default="", allow_blank=True, help_text="Only this metric.")
    generator = serializers.CharField(required=False, default="", allow_blank=True,
                                      help_text="Only this generator's videos (name).")
    status = serializers.ChoiceField(choices=["ok", "failed"], required=False, default="", allow_blank=True)


class ScoreRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    video = serializers.IntegerField(source="video_id")
    prompt_id = serializers.CharField(source="video.prompt.external_id")
    generator = serializers.CharField(source="video.generator.name")
    metric = serializers.CharField()
    version = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    error = serializers.CharField()
    source = serializers.CharField(help_text="computed or external")
    computed_at = serializers.DateTimeField()


class ScoreListApi(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = ScoreRowSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        params = ScoreFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        try:
            return scores_list(project_id=self.kwargs["project_id"], **params.validated_data)
        except ScoresUnavailable as exc:
            raise MetricsUnavailable(str(exc)) from exc

    @extend_schema(
        operation_id="scores_list",
        summary="Metric scores of the project's videos",
        parameters=[ScoreFilterSerializer],
        responses={200: ScoreRowSerializer(many=True), 400: BAD_REQUEST, 404: INVALID_CURSOR, 503: UNAVAILABLE,
                   **PROJECT_ERRORS},
        examples=[OpenApiExample("score", response_only=True, value={
            "id": 5, "video": 11, "prompt_id": "p7", "generator": "Gen-2", "metric": "clip_score", "version": "1",
            "value": 0.31, "status": "ok", "error": "", "source": "computed", "computed_at": "2026-11-24T12:00:00Z"})],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ScoreImportSerializer(UploadSerializer):
    file = serializers.FileField(help_text="CSV or JSON Lines: prompt_id, generator, metric, value, optional version.")


SCORE_REPORT_EXAMPLE = {
    "job_id": 12, "status": "done", "error": "", "file_name": "scores.csv", "total_rows": 3, "created_rows": 2,
    "updated_rows": 0, "unchanged_rows": 0, "error_rows": 1,
    "errors": [{"row": 3, "field": "generator", "message": "no generator named 'Sora' in this project"}],
}


class ScoreImportApi(APIView):
    permission_classes = [IsManager]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="scores_import",
        summary="Import metric scores computed elsewhere",
        description="Every row is checked on its own; good rows are stored, bad rows reported (201). "
        "A refused file answers 400 with the reason in ``error``.",
        request={"multipart/form-data": ScoreImportSerializer},
        responses={
            201: OpenApiResponse(description="The import report",
                                 examples=[OpenApiExample("report", value=SCORE_REPORT_EXAMPLE)]),
            400: BAD_REQUEST,
            413: TOO_LARGE,
            503: UNAVAILABLE,
            **PROJECT_ERRORS,
        },
    )
    def post(self, request, project_id: int):
        try:
            from metrics.services import metric_scores_import  # noqa: PLC0415 - optional app
        except ImportError as exc:  # pragma: no cover - metrics app not installed
            raise MetricsUnavailable(f"metric scores are unavailable: {exc}") from exc
        project = get_object_or_404(Project, pk=project_id)
        serializer = ScoreImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        report = metric_scores_import(project=project, file_obj=upload.file, file_name=upload.name, user=request.user)
        code = status.HTTP_201_CREATED if report.get("status") == "done" else status.HTTP_400_BAD_REQUEST
        return Response(report, status=code)
