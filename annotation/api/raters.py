"""Project managers add and list the project's raters (with their quality figures), and pause,
resume, exclude or include one (see ``annotation.services.quality``)."""

from __future__ import annotations

from collections.abc import Callable

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager
from annotation.api.manager.schema import BAD_REQUEST, PROJECT_ERRORS, ErrorSerializer
from annotation.models import Membership, Project
from annotation.selectors import quality as rules
from annotation.selectors.quality import project_rater_list
from annotation.services.quality import RaterNotFound, rater_exclude, rater_include, rater_pause, rater_resume
from annotation.services.raters import RATER_CREATED, raters_add


class RatersAddInputSerializer(serializers.Serializer):
    usernames = serializers.ListField(
        child=serializers.CharField(max_length=150),
        min_length=1,
        max_length=500,
        help_text="Accounts to make raters of the project.",
    )
    create_missing = serializers.BooleanField(
        default=True, help_text="Create the accounts that do not exist yet (each gets a generated password)."
    )


class RaterAddedSerializer(serializers.Serializer):
    username = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["created", "added", "already_rater", "manager", "unknown", "invalid"],
        help_text="created: new account; added: existing account added; already_rater; manager: left a "
        "manager; unknown: no such account (create_missing false); invalid: not a valid username.",
    )
    password = serializers.CharField(
        allow_null=True, help_text="The new account's password. Shown only in this response; stored hashed."
    )
    message = serializers.CharField(allow_blank=True)


class RatersAddOutputSerializer(serializers.Serializer):
    raters = RaterAddedSerializer(many=True)
    created = serializers.IntegerField()


RATER_FLAGS = [
    rules.RATER_FLAG_SIDE_BIAS,
    rules.RATER_FLAG_STRAIGHTLINING,
    rules.RATER_FLAG_LOW_AGREEMENT,
    rules.RATER_FLAG_TOO_FAST,
    rules.RATER_FLAG_GOLD_BELOW_THRESHOLD,
]


class RaterListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The rater's user id (the same as rater_id).")
    rater_id = serializers.IntegerField()
    username = serializers.CharField()
    external_id = serializers.CharField(allow_blank=True, help_text="Crowd platform worker id, if any.")
    paused = serializers.BooleanField(help_text="Offered no pairs.")
    paused_reason = serializers.CharField(allow_blank=True, help_text="Why (managers only; never shown to the rater).")
    paused_at = serializers.DateTimeField(allow_null=True)
    resumed_at = serializers.DateTimeField(allow_null=True)
    excluded = serializers.BooleanField(help_text="Judgments kept but left out of analysis, labels and exports.")
    judged = serializers.IntegerField(help_text="Pairs judged on the rating page or API.")
    skipped = serializers.IntegerField()
    has_lease = serializers.BooleanField()
    last_active = serializers.DateTimeField(allow_null=True)
    judgments = serializers.IntegerField(help_text="All judgments, imported ones included.")
    gold_judged = serializers.IntegerField(help_text="Graded gold judgments.")
    gold_correct = serializers.IntegerField(help_text="Gold judgments with every graded answer accepted.")
    gold_accuracy = serializers.FloatField(allow_null=True, help_text="gold_correct / gold_judged; null: no golds.")
    median_seconds = serializers.FloatField(allow_null=True, help_text="Median time from display to submit.")
    too_fast_judgments = serializers.IntegerField()
    not_watched_judgments = serializers.IntegerField()
    flagged_judgments = serializers.IntegerField(help_text="Judgments with any attention flag.")
    p_left = serializers.FloatField(allow_null=True, help_text="Share of sided judgments that chose the left video.")
    p_left_p_value = serializers.FloatField(allow_null=True, help_text="Exact two-sided binomial test against 0.5.")
    side_judgments = serializers.IntegerField(help_text="Judgments with a side (the n of p_left).")
    loo_agreement = serializers.FloatField(
        allow_null=True, help_text="Share of answers equal to the other raters' strict majority (leave-one-out)."
    )
    loo_comparisons = serializers.IntegerField(help_text="Answers with a decided majority of other raters.")
    flags = serializers.ListField(child=serializers.ChoiceField(choices=RATER_FLAGS))
    straightlining_answer = serializers.CharField(
        allow_null=True, help_text="With the straightlining flag: the answer repeated (left, right, tie, a or b)."
    )


RATER_EXAMPLE = {
    "id": 17, "rater_id": 17, "username": "crowd-3-5f0c2a91d4e7b6a8", "external_id": "5f3e9a0c1b2d4e6f7a8b9c0d",
    "paused": True, "paused_reason": "automatic: gold accuracy 2/6 = 33 % below 70 % after 6 golds",
    "paused_at": "2026-11-24T12:30:00Z", "resumed_at": None, "excluded": False, "judged": 58, "skipped": 1,
    "has_lease": False, "last_active": "2026-11-24T12:29:40Z", "judgments": 58, "gold_judged": 6,
    "gold_correct": 2, "gold_accuracy": 0.3333, "median_seconds": 3.1, "too_fast_judgments": 31,
    "not_watched_judgments": 12, "flagged_judgments": 33, "p_left": 0.81, "p_left_p_value": 0.0000023,
    "side_judgments": 52, "loo_agreement": 0.41, "loo_comparisons": 240,
    "flags": ["side_bias", "low_agreement", "too_fast", "gold_below_threshold"], "straightlining_answer": None,
}


class ProjectRatersApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(
        responses={200: RaterListItemSerializer(many=True), **PROJECT_ERRORS},
        summary="List the project's raters with their counts, quality figures and flags",
        description="One entry per rater (by username). Gold accuracy is graded per judgment; flags and "
        "their thresholds are documented in annotation/selectors/quality.py and the README's Quality control.",
        examples=[OpenApiExample("raters", value=[RATER_EXAMPLE], response_only=True)],
        tags=["raters"],
    )
    def get(self, request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        return Response(RaterListItemSerializer(project_rater_list(project=project), many=True).data)

    @extend_schema(
        request=RatersAddInputSerializer,
        responses={
            201: RatersAddOutputSerializer,
            400: BAD_REQUEST,
            **PROJECT_ERRORS,
        },
        summary="Add raters (new accounts get a generated password, returned once)",
        examples=[OpenApiExample("add", value={"usernames": ["ann", "ben"]}, request_only=True)],
        tags=["raters"],
    )
    def post(self, request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        serializer = RatersAddInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        added = raters_add(
            project=project,
            usernames=serializer.validated_data["usernames"],
            create_missing=serializer.validated_data["create_missing"],
        )
        payload = {
            "raters": [vars(r) for r in added],
            "created": sum(r.status == RATER_CREATED for r in added),
        }
        response = Response(RatersAddOutputSerializer(payload).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # it carries passwords
        return response


# --- pause, resume, exclude, include ---------------------------------------------------------


class RaterPauseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="",
        max_length=Membership._meta.get_field("paused_reason").max_length,
        help_text="Why, for the project's managers (never shown to the rater).",
    )


class RaterStateSerializer(serializers.Serializer):
    rater_id = serializers.IntegerField(source="user_id")
    paused = serializers.BooleanField()
    paused_reason = serializers.CharField(allow_blank=True)
    paused_at = serializers.DateTimeField(allow_null=True)
    resumed_at = serializers.DateTimeField(allow_null=True)
    excluded = serializers.BooleanField()


_RATER_NOT_FOUND = OpenApiResponse(
    ErrorSerializer,
    description="No rater with this id in the project (not a member, or a manager).",
    examples=[OpenApiExample("missing", value={"detail": "user 99 is not a rater of project 3"})],
)
_STATE_EXAMPLE = {
    "rater_id": 17, "paused": True, "paused_reason": "left the study", "paused_at": "2026-11-24T12:30:00Z",
    "resumed_at": None, "excluded": False,
}


def _rater_action(project_id: int, change: Callable[[Project], Membership]) -> Response:
    project = get_object_or_404(Project, pk=project_id)
    try:
        membership = change(project)
    except RaterNotFound as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
    return Response(RaterStateSerializer(membership).data)


def _action_schema(summary: str, description: str, *, request=None, example=_STATE_EXAMPLE):  # noqa: ANN001, ANN202
    return extend_schema(
        summary=summary,
        description=description + " Idempotent. Managers of the project only.",
        request=request,
        responses={200: RaterStateSerializer, 400: BAD_REQUEST, 404: _RATER_NOT_FOUND, **PROJECT_ERRORS},
        examples=[OpenApiExample("state", value=example, response_only=True)]
        + ([OpenApiExample("reason", value={"reason": "left the study"}, request_only=True)] if request else []),
        tags=["raters"],
    )


class RaterPauseApi(APIView):
    permission_classes = [IsManager]

    @_action_schema(
        "Pause a rater",
        "The rater gets no more pairs (their live lease is given back) and a calm message; their judgments "
        "stay. The reason is shown to managers only.",
        request=RaterPauseInputSerializer,
    )
    def post(self, request, project_id: int, rater_id: int) -> Response:
        serializer = RaterPauseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["reason"]
        return _rater_action(project_id, lambda project: rater_pause(project=project, rater_id=rater_id, reason=reason))


class RaterResumeApi(APIView):
    permission_classes = [IsManager]

    @_action_schema(
        "Resume a paused rater",
        "The rater gets pairs again; only gold judgments made from now on count for the automatic pause.",
        example={**_STATE_EXAMPLE, "paused": False, "paused_reason": "", "resumed_at": "2026-11-24T13:00:00Z"},
    )
    def post(self, request, project_id: int, rater_id: int) -> Response:
        return _rater_action(project_id, lambda project: rater_resume(project=project, rater_id=rater_id))


class RaterExcludeApi(APIView):
    permission_classes = [IsManager]

    @_action_schema(
        "Exclude a rater's judgments",
        "The judgments are kept but left out of analysis, labels and exports until the rater is included again.",
        example={**_STATE_EXAMPLE, "excluded": True},
    )
    def post(self, request, project_id: int, rater_id: int) -> Response:
        return _rater_action(project_id, lambda project: rater_exclude(project=project, rater_id=rater_id))


class RaterIncludeApi(APIView):
    permission_classes = [IsManager]

    @_action_schema(
        "Include an excluded rater's judgments again",
        "Undoes exclude: analysis, labels and exports count the rater's judgments again.",
    )
    def post(self, request, project_id: int, rater_id: int) -> Response:
        return _rater_action(project_id, lambda project: rater_include(project=project, rater_id=rater_id))
