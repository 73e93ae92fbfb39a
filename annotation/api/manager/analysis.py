"""The analysis summary: agreement, labels, rankings, alignment and position bias per question."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS
from annotation.selectors.analysis import DEFAULT_BOOTSTRAP_ROUNDS, project_analysis


class AnalysisInputSerializer(serializers.Serializer):
    bootstrap = serializers.IntegerField(
        min_value=0, max_value=1000, default=DEFAULT_BOOTSTRAP_ROUNDS,
        help_text="Bootstrap rounds for the rating intervals (0: no intervals).",
    )
    dawid_skene = serializers.BooleanField(default=False, help_text="Also fit Dawid–Skene labels.")


class AnalysisOutputSerializer(serializers.Serializer):
    analysis = serializers.DictField(help_text="analysis.analyze's result (schema_version, summary, questions).")
    computed_at = serializers.DateTimeField()
    judgments_stamp = serializers.CharField(help_text="Changes whenever the inputs change.")
    scores = serializers.CharField(help_text='"included", or why metric scores are not in it.')
    cached = serializers.BooleanField()


class AnalysisApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="analysis_read",
        summary="Analysis summary of the project",
        description="Runs ``analysis.analyze`` over the project's judgments (raters marked excluded left out) "
        "and metric scores; cached until the judgments change.",
        parameters=[AnalysisInputSerializer],
        responses={200: AnalysisOutputSerializer, 400: BAD_REQUEST, **PROJECT_ERRORS},
        examples=[OpenApiExample("summary", response_only=True, value={
            "analysis": {"schema_version": 1, "summary": {"n_pairs": 2, "n_raters": 3}, "questions": {}},
            "computed_at": "2026-11-24T12:00:00+00:00", "judgments_stamp": "3f2a9c1b0e7d", "scores": "included",
            "cached": False})],
    )
    def get(self, request, project_id: int):
        params = AnalysisInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        result = project_analysis(
            project_id=project_id,
            bootstrap_rounds=params.validated_data["bootstrap"],
            dawid_skene=params.validated_data["dawid_skene"],
        )
        return Response(result)
