"""Manifest imports over the API: upload (rows reported one by one) and reports."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.permissions import IsProjectManager
from annotation.models import ImportJob, Project
from annotation.selectors.imports import import_report, import_summaries
from annotation.services.imports import manifest_import
from annotation.services.pairs import pairs_generate
from annotation.uploads import TOO_LARGE, UploadSerializer, import_job_response


class ImportUploadSerializer(UploadSerializer):
    file = serializers.FileField(help_text="A manifest in CSV or JSON Lines.")


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
        return import_job_response(job=job)

    @extend_schema(summary="List the project's imports", responses={200: OpenApiResponse(description="Reports")})
    def get(self, request, project_id: int):
        return Response(import_summaries(project_id=project_id))


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
