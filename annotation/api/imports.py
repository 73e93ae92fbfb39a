"""Manifest imports over the API: upload (rows reported one by one) and reports."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.permissions import IsProjectManager
from annotation.models import ImportJob, Project
from annotation.selectors.imports import import_report
from annotation.services.imports import manifest_import
from annotation.services.pairs import pairs_generate
from annotation.uploads import TOO_LARGE, upload_check


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A manifest in CSV or JSON Lines.")

    def validate_file(self, value):
        return upload_check(upload=value)  # size (413), name and content (400)


class ImportListCreateApi(APIView):
    permission_classes = [IsProjectManager]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        responses={201: OpenApiResponse(description="The import report"), 400: OpenApiResponse(description="Bad file"),
                   413: TOO_LARGE},
        summary="Upload a manifest",
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = ImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        job = manifest_import(project=project, file_obj=upload.file, file_name=upload.name, user=request.user)
        code = status.HTTP_201_CREATED if job.status == ImportJob.STATUS_DONE else status.HTTP_400_BAD_REQUEST
        return Response(import_report(job=job), status=code)

    @extend_schema(summary="List the project's imports", responses={200: OpenApiResponse(description="Reports")})
    def get(self, request, project_id: int):
        jobs = ImportJob.objects.filter(project_id=project_id)[:100]
        return Response([import_report(job=job, max_rows=0) for job in jobs])


class ImportDetailApi(APIView):
    permission_classes = [IsProjectManager]

    @extend_schema(summary="One import's report", responses={200: OpenApiResponse(description="The report")})
    def get(self, request, project_id: int, import_id: int):
        job = get_object_or_404(ImportJob, pk=import_id, project_id=project_id)
        return Response(import_report(job=job))


class PairGenerateApi(APIView):
    permission_classes = [IsProjectManager]

    class InputSerializer(serializers.Serializer):
        generators = serializers.ListField(
            child=serializers.IntegerField(), required=False, help_text="Generator ids; default all."
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("PairGenerateResult", {"created": serializers.IntegerField()})},
        summary="Generate the missing pairs",
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = pairs_generate(project=project, generator_ids=serializer.validated_data.get("generators"))
        return Response({"created": created})
