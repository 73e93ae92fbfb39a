"""Gold answers from a file: ``POST /api/v1/projects/{id}/pairs/gold/import/`` (see
``annotation.services.gold_imports``; one pair at a time is ``PATCH /api/v1/pairs/{id}/``)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS
from annotation.models import Project
from annotation.services.gold_imports import gold_import
from annotation.uploads import UploadSerializer, import_job_response


class GoldImportSerializer(UploadSerializer):
    file = serializers.FileField(
        help_text="CSV or JSON Lines: prompt_id, generator_a, generator_b, one column per graded question key "
        "with the accepted answer(s) relative to that row's A and B: a, b, tie, or a|tie."
    )


GOLD_REPORT_EXAMPLE = {
    "id": 12, "project": 3, "kind": "gold", "file_name": "gold.csv", "status": "done", "error": "",
    "total_rows": 3, "created_rows": 2, "unchanged_rows": 0, "error_rows": 1,
    "created_at": "2026-11-24T12:00:00+00:00", "finished_at": "2026-11-24T12:00:01+00:00",
    "media": {"pending": 0, "ready": 0, "failed": 0},
    "row_errors": [{"row": 3, "field": "final_verdict", "message": "tie is not allowed for this question "
                                                                   "(allowed: a, b)"}],
    "media_failures": [],
}


class GoldImportApi(APIView):
    permission_classes = [IsManager]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="pairs_gold_import",
        summary="Mark pairs as gold from a file",
        description="Each row names an existing pair (prompt_id, generator_a, generator_b) and its accepted "
        "answers per question. Good rows are stored, bad rows reported one by one (201); a refused file "
        "(unreadable, a column that is not a question) answers 400 with the reason in ``error``.",
        request={"multipart/form-data": GoldImportSerializer},
        responses={
            201: OpenApiResponse(description="The import report",
                                 examples=[OpenApiExample("report", value=GOLD_REPORT_EXAMPLE)]),
            400: BAD_REQUEST,
            **PROJECT_ERRORS,
        },
        tags=["pairs"],
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = GoldImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        job = gold_import(project=project, file_obj=upload.file, file_name=upload.name, user=request.user)
        return import_job_response(job=job)
