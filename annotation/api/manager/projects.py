"""Projects: list and create (staff and managers), read and update (the project's managers)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.manager.permissions import IsManager, IsProjectCreator
from annotation.api.manager.schema import BAD_REQUEST, FORBIDDEN, PROJECT_ERRORS, UNAUTHENTICATED
from annotation.models import CANONICAL_ANSWERS, Membership, Project
from annotation.selectors.projects import projects_for_user
from annotation.services.project_updates import PROJECT_FIELDS, RubricChangeRefused, project_update
from annotation.services.projects import project_create

PROJECT_EXAMPLE = {
    "id": 3,
    "name": "Gen-2 vs Pika",
    "description": "Spring campaign",
    "instructions": "Watch both videos to the end, then answer.",
    "overlap": 3,
    "lease_seconds": 900,
    "require_full_watch": True,
    "gold_rate": 0.1,
    "gold_min": 5,
    "gold_accuracy_threshold": 0.7,
    "too_fast_seconds": 4.0,
    "rater_quota": 200,
    "completion_code": "C1A2B3",
    "completion_url": "https://app.prolific.com/submissions/complete?cc=C1A2B3",
    "created_at": "2026-11-24T12:00:00Z",
    "updated_at": "2026-11-24T12:00:00Z",
    "questions": [
        {"key": "final_verdict", "text": "Overall, which video is better?", "help_text": "", "order": 5,
         "allowed": ["a", "b", "tie"], "required": True},
    ],
}


class QuestionSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    text = serializers.CharField(max_length=300, required=False)
    help_text = serializers.CharField(required=False, allow_blank=True)
    order = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    allowed = serializers.ListField(
        child=serializers.ChoiceField(choices=CANONICAL_ANSWERS), min_length=2, max_length=3, required=False,
        help_text='Canonical answers a rater may give: a subset of ["a", "b", "tie"].',
    )
    required = serializers.BooleanField(required=False)

    def validate_allowed(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("answers must not repeat")
        if not {"a", "b"} <= set(value):
            raise serializers.ValidationError('"a" and "b" must both be allowed')
        return value


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    instructions = serializers.CharField()
    overlap = serializers.IntegerField()
    lease_seconds = serializers.IntegerField()
    require_full_watch = serializers.BooleanField()
    gold_rate = serializers.FloatField(help_text="Share of the pairs offered to a rater that are gold pairs.")
    gold_min = serializers.IntegerField(help_text="Graded gold judgments before gold accuracy may pause a rater.")
    gold_accuracy_threshold = serializers.FloatField(help_text="Gold accuracy below which a rater is paused.")
    too_fast_seconds = serializers.FloatField(help_text="Judgments submitted sooner are flagged too_fast.")
    rater_quota = serializers.IntegerField(allow_null=True, help_text="Judgments per rater; null: no limit.")
    completion_code = serializers.CharField(allow_blank=True, help_text="Shown to a rater who reaches the quota.")
    completion_url = serializers.CharField(allow_blank=True, help_text="Return link shown with the completion code.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    questions = QuestionSerializer(many=True, source="questions.all")


class ProjectFieldsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    instructions = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    lease_seconds = serializers.IntegerField(min_value=30, max_value=7 * 24 * 3600, required=False)
    require_full_watch = serializers.BooleanField(required=False)
    # Quality control (see annotation.services.quality) and the crowd quota.
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False,
                                       help_text="0 to 1: share of the pairs offered that are gold pairs.")
    gold_min = serializers.IntegerField(min_value=1, max_value=32767, required=False,
                                        help_text="Graded gold judgments before gold accuracy may pause a rater.")
    gold_accuracy_threshold = serializers.FloatField(min_value=0, max_value=1, required=False,
                                                     help_text="0 to 1: gold accuracy below which a rater is paused.")
    too_fast_seconds = serializers.FloatField(min_value=0, max_value=3600, required=False,
                                              help_text="Judgments submitted sooner (seconds) are flagged too_fast.")
    rater_quota = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False, allow_null=True,
                                           help_text="Judgments per rater; null for no limit.")
    completion_code = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                            help_text="Shown to a rater who reaches the quota (e.g. Prolific's code).")
    completion_url = serializers.URLField(max_length=500, required=False, allow_blank=True,
                                          help_text="An http(s) return link shown with the completion code.")

    def validate_completion_url(self, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("must be an http(s) URL")
        return value

    def validate_name(self, value: str) -> str:
        qs = Project.objects.filter(name=value)
        project = self.context.get("project")
        if project is not None:
            qs = qs.exclude(pk=project.pk)
        if qs.exists():
            raise serializers.ValidationError("a project with this name exists")
        return value


class ProjectCreateSerializer(ProjectFieldsSerializer):
    questions = QuestionSerializer(many=True, required=False, help_text="The rubric; default: the Gen2-vs-Pika one.")

    def validate_questions(self, value: list[dict]) -> list[dict]:
        keys = [q["key"] for q in value]
        if len(set(keys)) != len(keys):
            raise serializers.ValidationError("question keys must be unique")
        if not value:
            raise serializers.ValidationError("a rubric needs at least one question")
        for q in value:
            if not q.get("text"):
                raise serializers.ValidationError(f"question '{q['key']}' needs a text")
        return value


class ProjectUpdateSerializer(ProjectFieldsSerializer):
    name = serializers.CharField(max_length=200, required=False)
    questions = QuestionSerializer(
        many=True, required=False, help_text="Upserted by key: existing keys are updated, new keys added."
    )


class ProjectListCreateApi(APIView):
    """``GET``: the projects you manage. ``POST``: a new project; you become its manager.

    Who may: staff users, superusers and users who already manage a project (others: 403).
    """

    permission_classes = [IsProjectCreator]

    @extend_schema(
        operation_id="projects_list",
        summary="List the projects you manage",
        responses={200: ProjectOutputSerializer(many=True), 401: UNAUTHENTICATED, 403: FORBIDDEN},
        examples=[OpenApiExample("projects", value=[PROJECT_EXAMPLE], response_only=True)],
    )
    def get(self, request):
        projects = projects_for_user(user=request.user, role=Membership.ROLE_MANAGER).prefetch_related("questions")
        return Response(ProjectOutputSerializer(projects.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="projects_create",
        summary="Create a project (its creator becomes a manager)",
        request=ProjectCreateSerializer,
        responses={201: ProjectOutputSerializer, 400: BAD_REQUEST, 401: UNAUTHENTICATED, 403: FORBIDDEN},
        examples=[
            OpenApiExample("create", value={"name": "Gen-2 vs Pika", "overlap": 3}, request_only=True),
            OpenApiExample("created", value=PROJECT_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request):
        serializer = ProjectCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        rubric = data.pop("questions", None)
        project = project_create(created_by=request.user, rubric=rubric, **data)
        return Response(ProjectOutputSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    """``GET``: the project with its rubric. ``PATCH``: change settings and upsert questions."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="projects_read",
        summary="Read a project and its rubric",
        responses={200: ProjectOutputSerializer, **PROJECT_ERRORS},
        examples=[OpenApiExample("project", value=PROJECT_EXAMPLE, response_only=True)],
    )
    def get(self, request, project_id: int):
        project = get_object_or_404(Project.objects.prefetch_related("questions"), pk=project_id)
        return Response(ProjectOutputSerializer(project).data)

    @extend_schema(
        operation_id="projects_update",
        summary="Update settings and rubric",
        description="Only the fields sent change. Questions are upserted by key and never deleted; "
        "``allowed`` cannot change once the project has judgments (400).",
        request=ProjectUpdateSerializer,
        responses={200: ProjectOutputSerializer, 400: BAD_REQUEST, **PROJECT_ERRORS},
        examples=[
            OpenApiExample("raise overlap", value={"overlap": 5}, request_only=True),
            OpenApiExample(
                "quality control",
                value={"gold_rate": 0.15, "gold_min": 6, "gold_accuracy_threshold": 0.75, "too_fast_seconds": 5},
                request_only=True,
            ),
            OpenApiExample(
                "crowd quota",
                value={"rater_quota": 200, "completion_code": "C1A2B3",
                       "completion_url": "https://app.prolific.com/submissions/complete?cc=C1A2B3"},
                request_only=True,
            ),
            OpenApiExample("project", value=PROJECT_EXAMPLE, response_only=True),
        ],
    )
    def patch(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        serializer = ProjectUpdateSerializer(data=request.data, context={"project": project})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        questions = data.pop("questions", None)
        try:
            project = project_update(
                project=project, fields={k: v for k, v in data.items() if k in PROJECT_FIELDS}, questions=questions
            )
        except RubricChangeRefused as exc:
            raise serializers.ValidationError({"questions": [str(exc)]}) from exc
        project = Project.objects.prefetch_related("questions").get(pk=project.pk)
        return Response(ProjectOutputSerializer(project).data)
