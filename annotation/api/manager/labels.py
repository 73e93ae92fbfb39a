"""Labels: majority (or Dawid–Skene) per pair and question, with vote counts and agreement."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS
from annotation.api.pagination import LabelsPagination
from annotation.selectors.labels import AGGREGATIONS, label_rows, labels_cached, question_keys


class LabelListInputSerializer(serializers.Serializer):
    question = serializers.CharField(required=False, help_text="A question key; default: every question.")
    aggregation = serializers.ChoiceField(choices=AGGREGATIONS, default="majority")
    include_excluded = serializers.BooleanField(
        default=False, help_text="Count the judgments of raters marked excluded (left out by default)."
    )
    generators = serializers.CharField(
        required=False, help_text="Comma-separated generator names: only pairs of two of them."
    )
    limit = serializers.IntegerField(min_value=1, max_value=LabelsPagination.max_limit, required=False)
    offset = serializers.IntegerField(min_value=0, required=False)

    def validate_question(self, value: str) -> str:
        if value not in self.context["questions"]:
            raise serializers.ValidationError("not a question of this project")
        return value


class VotesSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    tie = serializers.IntegerField()
    b = serializers.IntegerField()


class ProbabilitiesSerializer(serializers.Serializer):
    a = serializers.FloatField()
    tie = serializers.FloatField()
    b = serializers.FloatField()


class LabelSerializer(serializers.Serializer):
    pair = serializers.IntegerField()
    prompt_id = serializers.CharField()
    question = serializers.CharField()
    generator_a = serializers.CharField()
    generator_b = serializers.CharField()
    n = serializers.IntegerField(help_text="Judgments counted.")
    votes = VotesSerializer()
    label = serializers.CharField(allow_null=True, help_text='"a", "b", "tie"; null when undecided (exact split).')
    majority = serializers.CharField(allow_null=True, help_text="The majority label (equal to label for majority).")
    agreement = serializers.FloatField(allow_null=True, help_text="Share of agreeing rater pairs; null below 2.")
    unanimous = serializers.BooleanField()
    confidence = serializers.FloatField(allow_null=True, help_text="Vote share, or Dawid–Skene posterior.")
    probabilities = ProbabilitiesSerializer(required=False, help_text="Dawid–Skene posteriors (only then).")


class LabelPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = LabelSerializer(many=True)


class LabelListApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        operation_id="labels_list",
        summary="Aggregated labels per pair and question",
        description="Computed from every judgment of the project (raters marked excluded left out unless "
        "include_excluded) and cached until a judgment or a gold pair changes. Gold pairs (known answers, "
        "used to check raters) have no labels. Exact splits are undecided (label null). Rows are in pair id "
        "order, each pair's questions in rubric order.",
        parameters=[LabelListInputSerializer],
        responses={200: LabelPageSerializer, 400: BAD_REQUEST, **PROJECT_ERRORS},
        examples=[OpenApiExample("labels", response_only=True, value={
            "count": 1, "next": None, "previous": None, "results": [{
                "pair": 21, "prompt_id": "p7", "question": "final_verdict", "generator_a": "Gen-2",
                "generator_b": "Pika", "n": 3, "votes": {"a": 2, "tie": 0, "b": 1}, "label": "a", "majority": "a",
                "agreement": 0.3333, "unanimous": False, "confidence": 0.6667}]})],
    )
    def get(self, request, project_id: int):
        keys = question_keys(project_id=project_id)
        params = LabelListInputSerializer(data=request.query_params, context={"questions": keys})
        params.is_valid(raise_exception=True)
        data = params.validated_data
        generators = [g.strip() for g in data.get("generators", "").split(",") if g.strip()]
        labels = labels_cached(
            project_id=project_id,
            questions=[data["question"]] if data.get("question") else keys,
            aggregation=data["aggregation"],
            include_excluded=data["include_excluded"],
            generators=generators,
        )
        paginator = LabelsPagination()
        count = len(labels)
        offset, limit = data.get("offset", 0), data.get("limit", paginator.default_limit)
        page = labels.iloc[offset : offset + limit]
        paginator.count, paginator.offset, paginator.limit, paginator.request = count, offset, limit, request
        return paginator.get_paginated_response(label_rows(labels=page))
