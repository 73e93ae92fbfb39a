"""Judgments: the incremental feed (cursor-paginated) and imports of judgments made elsewhere."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS
from annotation.api.pagination import CursorInvalid, judgment_cursor_decode, judgment_cursor_encode
from annotation.models import Project
from annotation.selectors.judgments import JudgmentFilters, judgments_page
from annotation.services.judgment_imports import judgments_import
from annotation.uploads import TOO_LARGE, UploadSerializer, import_job_response

MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1000

JUDGMENT_EXAMPLE = {
    "id": 1041,
    "pair": 21,
    "prompt_id": "p7",
    "generator_a": "Gen-2",
    "generator_b": "Pika",
    "is_gold": False,
    "rater": 5,
    "answers": {"visual_appeal": "a", "final_verdict": "tie"},
    "left_is_a": False,
    "duration_ms": 18250,
    "watch_a_seconds": 8.1,
    "watch_b_seconds": 7.9,
    "source": "app",
    "flags": [],
    "created_at": "2026-11-24T12:00:00.123456Z",
    "updated_at": "2026-11-24T12:00:00.123456Z",
}


class JudgmentListInputSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, help_text="``next_cursor`` of the previous page; none at first.")
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
    question = serializers.SlugField(required=False, help_text="Only judgments that answer this question.")
    generator = serializers.CharField(required=False, help_text="Only pairs with this generator (name) on a side.")
    rater = serializers.IntegerField(required=False, help_text="Only this rater's judgments (user id).")
    updated_after = serializers.DateTimeField(required=False, help_text="Only judgments updated after this instant.")

    def validate_cursor(self, value: str) -> tuple[int, int]:
        try:
            return judgment_cursor_decode(value)
        except CursorInvalid as exc:
            raise serializers.ValidationError(str(exc)) from exc


class JudgmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    prompt_id = serializers.CharField(help_text="The prompt's external id.")
    generator_a = serializers.CharField()
    generator_b = serializers.CharField()
    is_gold = serializers.BooleanField(
        help_text="The pair is a gold pair (known answers, shown to many raters to check them): its judgments "
        "are listed here but left out of labels, preference exports and the analysis."
    )
    rater = serializers.IntegerField(help_text="The rater's user id.")
    answers = serializers.DictField(child=serializers.ChoiceField(choices=["a", "b", "tie"]),
                                    help_text='Canonical answers per question key: "a", "b" or "tie".')
    left_is_a = serializers.BooleanField(allow_null=True, help_text="Was A shown on the left (null: imported).")
    duration_ms = serializers.IntegerField(allow_null=True, help_text="First display to submit.")
    watch_a_seconds = serializers.FloatField(allow_null=True)
    watch_b_seconds = serializers.FloatField(allow_null=True)
    source = serializers.CharField(help_text="app or import")
    flags = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class JudgmentPageSerializer(serializers.Serializer):
    results = JudgmentSerializer(many=True)
    next_cursor = serializers.CharField(help_text="Resume from here: always present, also on the last page.")
    has_more = serializers.BooleanField(help_text="More judgments are ready now; false: caught up, pull later.")
    next = serializers.CharField(allow_null=True, help_text="The next page's URL while has_more.")


class JudgmentListApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="judgments_list",
        summary="Pull judgments incrementally (canonical A/B, with generator names)",
        description=(
            "Judgments in id order, cursor-paginated. Keep ``next_cursor`` and pass it back later: "
            "a client that always resumes from its last cursor gets every judgment exactly once, "
            "even while raters keep submitting. Pages only reach a *settled* id: judgments whose "
            "transaction may still commit are held back for a later page (``has_more`` false means "
            "caught up). Keep the same filters for one cursor. Judgments of gold pairs are included, "
            "marked ``is_gold``: drop them before training on preferences."
        ),
        parameters=[JudgmentListInputSerializer],
        responses={200: JudgmentPageSerializer, 400: BAD_REQUEST, **PROJECT_ERRORS},
        examples=[OpenApiExample("page", response_only=True, value={
            "results": [JUDGMENT_EXAMPLE], "next_cursor": "eyJhIjoxMDQxLCJoIjoxMDQxfQ:1vX...",
            "has_more": False, "next": None})],
    )
    def get(self, request, project_id: int):
        params = JudgmentListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        after, horizon = data.get("cursor", (0, 0))
        page = judgments_page(
            project_id=project_id,
            filters=JudgmentFilters(
                question=data.get("question"),
                generator=data.get("generator"),
                rater=data.get("rater"),
                updated_after=data.get("updated_after"),
            ),
            after=after,
            horizon=horizon,
            limit=data["page_size"],
        )
        cursor = judgment_cursor_encode(last_id=page.last_id, horizon=page.horizon)
        next_url = None
        if page.has_more:
            query = request.query_params.copy()
            query["cursor"] = cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"results": page.rows, "next_cursor": cursor, "has_more": page.has_more, "next": next_url})


class JudgmentImportSerializer(UploadSerializer):
    file = serializers.FileField(help_text="CSV or JSON Lines: prompt_id, generator_a, generator_b, rater, one "
                                           "column per question key (a / b / tie relative to that row's A and B).")
    placeholders = serializers.BooleanField(
        default=False, help_text="Create missing prompts, generators and placeholder videos."
    )


IMPORT_REPORT_EXAMPLE = {
    "id": 9, "project": 3, "kind": "judgments", "file_name": "past.csv", "status": "done", "error": "",
    "total_rows": 3, "created_rows": 2, "unchanged_rows": 0, "error_rows": 1,
    "created_at": "2026-11-24T12:00:00+00:00", "finished_at": "2026-11-24T12:00:01+00:00",
    "media": {"pending": 0, "ready": 0, "failed": 0},
    "row_errors": [{"row": 3, "field": "generator_b", "message": "unknown generator 'Sora'"}],
    "media_failures": [],
}


class JudgmentImportApi(APIView):
    permission_classes = [IsManager]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="judgments_import",
        summary="Import judgments made elsewhere",
        description="Good rows are stored, bad rows reported one by one (201); a refused file answers 400 "
        "with the reason in ``error``.",
        request={"multipart/form-data": JudgmentImportSerializer},
        responses={
            201: OpenApiResponse(description="The import report",
                                 examples=[OpenApiExample("report", value=IMPORT_REPORT_EXAMPLE)]),
            400: BAD_REQUEST,
            413: TOO_LARGE,
            **PROJECT_ERRORS,
        },
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = JudgmentImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        job = judgments_import(
            project=project,
            file_obj=upload.file,
            file_name=upload.name,
            user=request.user,
            placeholders=serializer.validated_data["placeholders"],
        )
        return import_job_response(job=job)

