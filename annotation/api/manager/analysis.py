"""The analysis summary: agreement, labels, rankings, alignment and position bias per question."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS
from annotation.models import Project
from annotation.selectors.analysis import DEFAULT_BOOTSTRAP_ROUNDS, AnalysisParams, project_analysis


class AnalysisInputSerializer(serializers.Serializer):
    bootstrap = serializers.IntegerField(
        min_value=0, max_value=1000, default=DEFAULT_BOOTSTRAP_ROUNDS,
        help_text="Bootstrap rounds for the rating intervals (0: no intervals). The default is the "
        "result kept warm in the background (the dashboard's); other values are computed on first request.",
    )
    dawid_skene = serializers.BooleanField(default=False, help_text="Also fit Dawid–Skene labels.")


class ExcludedRaterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AnalysisOutputSerializer(serializers.Serializer):
    analysis = serializers.DictField(help_text="analysis.analyze's result (schema_version, summary, questions).")
    computed_at = serializers.DateTimeField()
    judgments_stamp = serializers.CharField(
        help_text="The change token the result was computed from; a new one whenever the inputs change."
    )
    scores = serializers.CharField(help_text='"included", or why metric scores are not in it.')
    cached = serializers.BooleanField(help_text="False when this request computed the result.")
    stale = serializers.BooleanField(
        help_text="Judgments (or exclusions, gold pairs, scores, rubric) changed since computed_at; "
        "this is the last result, and a refresh has been requested."
    )
    refreshing = serializers.BooleanField(help_text="A background refresh is queued or running.")
    n_judgments = serializers.IntegerField(help_text="Judgments (pair × rater) the result covers.")
    excluded_raters = ExcludedRaterSerializer(
        many=True, help_text="Raters marked excluded: their judgments are kept but left out of the result."
    )
    gold_pairs = serializers.IntegerField(help_text="Gold pairs of the project (left out of the analysis).")


class AnalysisApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="analysis_read",
        summary="Analysis summary of the project",
        description="``analysis.analyze`` over the project's judgments (raters marked excluded and gold pairs left "
        "out) and metric scores, from the cache the dashboard also reads. After a change the last result is "
        "returned with ``stale: true`` while a background refresh runs (at most one per "
        "DASHBOARD_REFRESH_DEBOUNCE_SECONDS); only when nothing was ever computed for these parameters does "
        "the request compute it (``cached: false``).",
        parameters=[AnalysisInputSerializer],
        responses={200: AnalysisOutputSerializer, 400: BAD_REQUEST, **PROJECT_ERRORS},
        examples=[OpenApiExample("summary", response_only=True, value={
            "analysis": {"schema_version": 1, "summary": {"n_pairs": 2, "n_raters": 3}, "questions": {}},
            "computed_at": "2026-11-24T12:00:00+00:00", "judgments_stamp": "3f2a9c1b0e7d4a5b8c6d2e1f0a9b8c7d",
            "scores": "included", "cached": True, "stale": False, "refreshing": False, "n_judgments": 6,
            "excluded_raters": [{"id": 12, "name": "rater-12"}], "gold_pairs": 0})],
    )
    def get(self, request, project_id: int):
        params = AnalysisInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        read = project_analysis(
            project=get_object_or_404(Project.objects.only("id", "created_at"), pk=project_id),
            params=AnalysisParams(bootstrap_rounds=params.validated_data["bootstrap"],
                                  dawid_skene=params.validated_data["dawid_skene"]),
            on_miss="compute",
        )
        entry = read.entry
        return Response({
            "analysis": entry["analysis"],
            "computed_at": entry["computed_at"],
            "judgments_stamp": entry["token"],
            "scores": entry["scores"],
            "cached": read.cached,
            "stale": read.stale,
            "refreshing": read.refreshing,
            "n_judgments": entry["n_judgments"],
            "excluded_raters": entry["excluded_raters"],
            "gold_pairs": entry["gold_pairs"],
        })
