"""Exports: stream a file (raw judgments, labels, TRL preference pairs) or run a job for large projects."""

from __future__ import annotations

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager, id_in_range
from annotation.api.manager.schema import BAD_REQUEST, NOT_FOUND, PROJECT_ERRORS
from annotation.exports.spec import (
    AGGREGATIONS,
    CONTENT_TYPES,
    FLAG_CHOICES,
    FORMATS,
    KINDS,
    VIDEO_REFS,
    ExportOptionError,
)
from annotation.models import ExportJob, Project
from annotation.services.exports import (
    export_is_large,
    export_job_create,
    export_job_path,
    export_spec,
    export_stream,
)


def _job_or_404(project_id: int, job_id: int) -> ExportJob:
    if not id_in_range(job_id):
        raise Http404("No ExportJob matches the given query.")
    return get_object_or_404(ExportJob, pk=job_id, project_id=project_id)


class FormatParamIsAnOption(DefaultContentNegotiation):
    """``?format=`` names the export's file format here, not DRF's renderer: answer errors in JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):  # noqa: ANN001, ANN201
        renderer = renderers[0]
        return renderer, renderer.media_type


class ExportInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS, default="preference",
                                   help_text="raw: one row per judgment (gold pairs too, is_gold true); labels: "
                                             "per pair and question; preference: TRL prompt/chosen/rejected per "
                                             "pair (labels and preference leave gold pairs out).")
    format = serializers.ChoiceField(choices=FORMATS, default="jsonl")
    question = serializers.CharField(default="final_verdict",
                                     help_text='A question key, or "all" (raw and labels only).')
    aggregation = serializers.ChoiceField(choices=AGGREGATIONS, default="majority")
    ties = serializers.ChoiceField(choices=FLAG_CHOICES, required=False,
                                   help_text="Pairs whose label is a tie: drop, or keep flagged. "
                                             "Default: drop (preference), keep (labels).")
    undecided = serializers.ChoiceField(choices=FLAG_CHOICES, required=False,
                                        help_text="Pairs with an exact split: drop, or keep flagged. "
                                                  "Default: drop (preference), keep (labels).")
    generators = serializers.CharField(required=False,
                                       help_text="Comma-separated names: only pairs of two of them.")
    include_excluded = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="Judgments of raters marked excluded. Default: false (labels, preference), true (raw, flagged).",
    )
    min_agreement = serializers.FloatField(min_value=0, max_value=1, required=False,
                                           help_text="Drop pairs whose agreement is below this (and single-judgment "
                                                     "pairs, which have none).")
    videos = serializers.ChoiceField(choices=VIDEO_REFS, default="source",
                                     help_text="source: the manifest's path/URL; url: this server's media URL.")
    run_async = serializers.BooleanField(
        default=False, help_text="Always answer with a job (large projects always get one)."
    )


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=[c for c, _ in ExportJob.STATUS_CHOICES])
    kind = serializers.CharField()
    format = serializers.CharField()
    options = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField(help_text="0..1")
    rows_expected = serializers.IntegerField()
    rows_read = serializers.IntegerField(help_text="Judgments read so far.")
    rows_written = serializers.IntegerField(help_text="Rows written so far.")
    file_name = serializers.CharField()
    size_bytes = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    def get_options(self, job: ExportJob) -> dict:
        return {k: v for k, v in job.options.items() if k != "base_url"}

    def get_progress(self, job: ExportJob) -> float:
        if job.status == ExportJob.STATUS_DONE:
            return 1.0
        if not job.rows_expected:
            return 0.0
        return round(min(0.99, job.rows_read / job.rows_expected), 4)

    def get_url(self, job: ExportJob) -> str:
        return reverse("api-export-job", kwargs={"project_id": job.project_id, "job_id": job.pk})

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.STATUS_DONE:
            return None
        return reverse("api-export-job-download", kwargs={"project_id": job.project_id, "job_id": job.pk})


JOB_EXAMPLE = {
    "id": 4, "status": "running", "kind": "preference", "format": "parquet",
    "options": {"question": "final_verdict", "aggregation": "majority", "ties": "drop", "undecided": "drop"},
    "progress": 0.42, "rows_expected": 1000000, "rows_read": 420000, "rows_written": 0, "file_name": "",
    "size_bytes": None, "error": "", "created_at": "2026-11-24T12:00:00Z", "started_at": "2026-11-24T12:00:01Z",
    "finished_at": None, "url": "/api/v1/projects/3/exports/jobs/4/", "download_url": None,
}
FILE_RESPONSES = {
    (200, "application/jsonl"): OpenApiTypes.BINARY,
    (200, "text/csv"): OpenApiTypes.BINARY,
    (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
}


class ExportApi(APIView):
    permission_classes = [IsManager]
    content_negotiation_class = FormatParamIsAnOption

    @extend_schema(
        operation_id="exports_create",
        summary="Export judgments, labels or TRL preference pairs",
        description=(
            "Streams the file (Content-Disposition names project, kind, question and date) with bounded "
            "memory. For a project with more than EXPORT_SYNC_MAX_JUDGMENTS judgments (default 200,000), "
            "or with run_async=true, answers 202 with a job to poll instead. Excluded raters are left out of "
            "labels and preference exports by default. Gold pairs (known answers, used to check raters) are "
            "left out of labels and preference exports; raw exports keep their judgments with is_gold true."
        ),
        parameters=[ExportInputSerializer],
        responses={
            **FILE_RESPONSES,
            202: OpenApiResponse(ExportJobSerializer, description="A job writes the file; poll its url.",
                                 examples=[OpenApiExample("job", value=JOB_EXAMPLE)]),
            400: BAD_REQUEST,
            **PROJECT_ERRORS,
        },
    )
    def get(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        params = ExportInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        options = {k: v for k, v in params.validated_data.items() if k != "run_async" and v is not None}
        try:
            spec = export_spec(project=project, options=options)
        except ExportOptionError as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.errors.items()}) from exc
        base_url = request.build_absolute_uri("/")
        if params.validated_data["run_async"] or export_is_large(project=project):
            job = export_job_create(project=project, spec=spec, user=request.user, base_url=base_url)
            job.refresh_from_db()
            response = Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
            response["Location"] = ExportJobSerializer(job).data["url"]
            return response
        stream = export_stream(project=project, spec=spec, base_url=base_url)
        response = StreamingHttpResponse(stream.chunks, content_type=stream.content_type)
        response["Content-Disposition"] = f'attachment; filename="{stream.file_name}"'
        response["Cache-Control"] = "no-store"
        return response


class ExportJobListApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="export_jobs_list",
        summary="The project's export jobs, newest first (at most 50)",
        responses={200: ExportJobSerializer(many=True), **PROJECT_ERRORS},
        examples=[OpenApiExample("jobs", value=[JOB_EXAMPLE], response_only=True)],
    )
    def get(self, request, project_id: int):
        jobs = ExportJob.objects.filter(project_id=project_id).order_by("-id")[:50]
        return Response(ExportJobSerializer(jobs, many=True).data)


class ExportJobDetailApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="export_jobs_read",
        summary="An export job's status and progress",
        responses={200: ExportJobSerializer, 404: NOT_FOUND, **PROJECT_ERRORS},
        examples=[OpenApiExample("job", value=JOB_EXAMPLE, response_only=True)],
    )
    def get(self, request, project_id: int, job_id: int):
        job = _job_or_404(project_id, job_id)
        return Response(ExportJobSerializer(job).data)


class ExportJobDownloadApi(APIView):
    permission_classes = [IsManager]
    content_negotiation_class = FormatParamIsAnOption

    @extend_schema(
        operation_id="export_jobs_download",
        summary="Download a finished export job's file",
        responses={**FILE_RESPONSES, 404: NOT_FOUND, **PROJECT_ERRORS},
    )
    def get(self, request, project_id: int, job_id: int):
        job = _job_or_404(project_id, job_id)
        path = export_job_path(job=job)
        if path is None:
            raise Http404("this export is not finished")
        return FileResponse(path.open("rb"), as_attachment=True, filename=job.file_name,
                            content_type=CONTENT_TYPES.get(job.format, "application/octet-stream"))
