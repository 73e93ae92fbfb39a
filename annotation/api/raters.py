"""Project managers add and list the project's raters."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.permissions import IsProjectManager
from annotation.models import Project
from annotation.selectors.assignments import project_raters
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


class RaterListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    paused = serializers.BooleanField()
    excluded = serializers.BooleanField()
    judged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    has_lease = serializers.BooleanField()
    last_active = serializers.DateTimeField(allow_null=True)


class ProjectRatersApi(APIView):
    permission_classes = [IsProjectManager]

    @extend_schema(
        responses={200: RaterListItemSerializer(many=True), 403: OpenApiResponse(description="Not a manager.")},
        summary="List the project's raters with their counts",
        tags=["raters"],
    )
    def get(self, request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        return Response(RaterListItemSerializer(project_raters(project=project), many=True).data)

    @extend_schema(
        request=RatersAddInputSerializer,
        responses={
            201: RatersAddOutputSerializer,
            400: OpenApiResponse(description="Malformed body."),
            403: OpenApiResponse(description="Not a manager of this project."),
        },
        summary="Add raters (new accounts get a generated password, returned once)",
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
