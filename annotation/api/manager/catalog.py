"""Plain read-only listings of a project: generators, prompts, videos (with metric scores), pairs;
and marking a pair as gold (``PATCH /api/v1/pairs/{id}/``)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response

from annotation.api.manager.permissions import IsManager, IsPairManager
from annotation.api.manager.schema import (
    BAD_REQUEST,
    FORBIDDEN,
    INVALID_CURSOR,
    NOT_FOUND,
    PROJECT_ERRORS,
    UNAUTHENTICATED,
)
from annotation.api.pagination import IdCursorPagination
from annotation.models import Pair, Video
from annotation.selectors.catalog import (
    generators_list,
    pair_detail,
    pairs_list,
    prompts_list,
    video_scores,
    video_urls,
    videos_list,
)
from annotation.services.quality import GoldAnswersError, pair_gold_set


class PromptFilterSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, default="", allow_blank=True,
                                   help_text="External id, or words in the text.")


class VideoFilterSerializer(serializers.Serializer):
    generator = serializers.CharField(required=False, default="", allow_blank=True,
                                      help_text="Only this generator's videos (name).")
    status = serializers.ChoiceField(choices=[c for c, _ in Video.STATUS_CHOICES], required=False, default="",
                                     allow_blank=True)


class PairFilterSerializer(serializers.Serializer):
    generator = serializers.CharField(required=False, default="", allow_blank=True,
                                      help_text="Pairs with this generator on either side (name).")
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)


def _filters(serializer_class: type[serializers.Serializer], request) -> dict:  # noqa: ANN001
    """Validated query filters (400 on bad values, e.g. NUL characters)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class GeneratorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()


class PromptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    text = serializers.CharField()
    tags = serializers.DictField()


class ScoreSerializer(serializers.Serializer):
    metric = serializers.CharField()
    version = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    source = serializers.CharField(help_text="computed or external")
    computed_at = serializers.DateTimeField()
    higher_is_better = serializers.BooleanField(allow_null=True)
    group = serializers.CharField()


class VideoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.UUIDField()
    prompt = serializers.IntegerField(source="prompt_id")
    prompt_id = serializers.CharField(source="prompt.external_id", help_text="The prompt's external id.")
    generator = serializers.CharField(source="generator.name")
    source = serializers.CharField(help_text="The manifest's path or URL.")
    status = serializers.CharField()
    error = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)
    fps = serializers.FloatField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    codec = serializers.CharField()
    url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()

    def get_url(self, video: Video) -> str:
        return video_urls(video)["url"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_poster_url(self, video: Video) -> str | None:
        return video_urls(video)["poster_url"]

    @extend_schema_field(ScoreSerializer(many=True))
    def get_scores(self, video: Video) -> list[dict]:
        return self.context.get("scores", {}).get(video.pk, [])


class VideoRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.UUIDField()
    source = serializers.CharField()
    status = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, video: Video) -> str:
        return video_urls(video)["url"]


class PairSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prompt = serializers.IntegerField(source="prompt_id")
    prompt_id = serializers.CharField(source="prompt.external_id")
    generator_a = serializers.CharField(source="generator_a.name")
    generator_b = serializers.CharField(source="generator_b.name")
    video_a = serializers.IntegerField(source="video_a_id")
    video_b = serializers.IntegerField(source="video_b_id")
    is_gold = serializers.BooleanField()
    gold_answers = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=["a", "b", "tie"])),
        help_text="Gold pairs: question key -> accepted answers (canonical A/B terms); {} otherwise.",
    )
    judgment_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class PairGoldInputSerializer(serializers.Serializer):
    gold_answers = serializers.JSONField(
        allow_null=True,
        help_text='Question key -> "a", "b" or "tie" (canonical A/B terms), "a|tie", or a list of accepted '
        "answers. null or {} unmarks the pair.",
    )


class PairDetailSerializer(PairSerializer):
    prompt_text = serializers.CharField(source="prompt.text")
    video_a = VideoRefSerializer()
    video_b = VideoRefSerializer()


class GeneratorListApi(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = GeneratorSerializer
    pagination_class = None

    def get_queryset(self):
        return generators_list(project_id=self.kwargs["project_id"])

    @extend_schema(
        summary="The project's generators",
        responses={200: GeneratorSerializer(many=True), **PROJECT_ERRORS},
        examples=[OpenApiExample("generators", value=[{"id": 1, "name": "Gen-2", "description": ""}],
                                 response_only=True)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PromptListApi(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = PromptSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return prompts_list(project_id=self.kwargs["project_id"], **_filters(PromptFilterSerializer, self.request))

    @extend_schema(
        summary="The project's prompts",
        parameters=[PromptFilterSerializer],
        responses={200: PromptSerializer(many=True), 400: BAD_REQUEST, 404: INVALID_CURSOR, **PROJECT_ERRORS},
        examples=[OpenApiExample("prompt", value={"id": 7, "external_id": "p7", "text": "a fox in snow",
                                                  "tags": {"motion": "fast"}}, response_only=True)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class VideoListApi(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = VideoSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return videos_list(project_id=self.kwargs["project_id"], **_filters(VideoFilterSerializer, self.request))

    @extend_schema(
        summary="The project's videos with their metric scores",
        description="Each video lists its current metric scores (computed at the current version, and imported).",
        parameters=[VideoFilterSerializer],
        responses={200: VideoSerializer(many=True), 400: BAD_REQUEST, 404: INVALID_CURSOR, **PROJECT_ERRORS},
        examples=[OpenApiExample("video", response_only=True, value={
            "id": 11, "public_id": "5f1c1c2e-3f43-4c5e-9a55-0c6f1f7f2a10", "prompt": 7, "prompt_id": "p7",
            "generator": "Gen-2", "source": "/data/gen2/p7.mp4", "status": "ready", "error": "", "duration": 4.0,
            "fps": 24.0, "width": 1280, "height": 720, "codec": "h264",
            "url": "/media/v/5f1c1c2e-3f43-4c5e-9a55-0c6f1f7f2a10.mp4", "poster_url": None,
            "scores": [{"metric": "clip_score", "version": "1", "value": 0.31, "status": "ok", "error": "",
                        "source": "computed", "computed_at": "2026-11-24T12:00:00Z", "higher_is_better": True,
                        "group": "clip"}]})],
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        scores, _reason = video_scores(video_ids=[v.pk for v in page])
        data = VideoSerializer(page, many=True, context={"scores": scores}).data
        return self.get_paginated_response(data)


class PairListApi(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = PairSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return pairs_list(project_id=self.kwargs["project_id"], **_filters(PairFilterSerializer, self.request))

    @extend_schema(
        summary="The project's pairs (canonical A/B order)",
        parameters=[PairFilterSerializer],
        responses={200: PairSerializer(many=True), 400: BAD_REQUEST, 404: INVALID_CURSOR, **PROJECT_ERRORS},
        examples=[OpenApiExample("pair", response_only=True, value={
            "id": 21, "prompt": 7, "prompt_id": "p7", "generator_a": "Gen-2", "generator_b": "Pika", "video_a": 11,
            "video_b": 12, "is_gold": False, "gold_answers": {}, "judgment_count": 3,
            "created_at": "2026-11-24T12:00:00Z"})],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


PAIR_DETAIL_EXAMPLE = {
    "id": 21, "prompt": 7, "prompt_id": "p7", "prompt_text": "a fox in snow", "generator_a": "Gen-2",
    "generator_b": "Pika", "is_gold": True, "gold_answers": {"final_verdict": ["a"], "consistency": ["a", "tie"]},
    "judgment_count": 3, "created_at": "2026-11-24T12:00:00Z",
    "video_a": {"id": 11, "public_id": "5f1c1c2e-3f43-4c5e-9a55-0c6f1f7f2a10", "source": "/data/gen2/p7.mp4",
                "status": "ready", "url": "/media/v/5f1c1c2e-3f43-4c5e-9a55-0c6f1f7f2a10.mp4"},
    "video_b": {"id": 12, "public_id": "0b7e6f0a-8f55-4a8c-a0d5-9b1d5f86a2c4", "source": "/data/pika/p7.mp4",
                "status": "ready", "url": "/media/v/0b7e6f0a-8f55-4a8c-a0d5-9b1d5f86a2c4.mp4"}}


GOLD_ERRORS = OpenApiResponse(
    inline_serializer("GoldAnswersErrors", {
        "gold_answers": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text='Question key ("gold_answers" for the value as a whole) -> why it was refused.',
        ),
    }),
    description="Gold answers refused; nothing was changed.",
    examples=[OpenApiExample("bad key", value={"gold_answers": {
        "final_verdit": ["not a question of this project (questions: visual_appeal, final_verdict)"]}})],
)


class PairDetailApi(generics.GenericAPIView):
    permission_classes = [IsPairManager]
    serializer_class = PairDetailSerializer

    @extend_schema(
        summary="One pair with its videos",
        responses={200: PairDetailSerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
        examples=[OpenApiExample("pair", response_only=True,
                                 value={**PAIR_DETAIL_EXAMPLE, "is_gold": False, "gold_answers": {}})],
    )
    def get(self, request, pair_id: int):
        pair = pair_detail(pair_id=pair_id)
        if pair is None:
            raise Http404("No Pair matches the given query.")
        return Response(PairDetailSerializer(pair).data)

    @extend_schema(
        summary="Mark a pair as gold (expected answers), or unmark it",
        description="Gold pairs are offered to raters at the project's gold_rate, blind like any other pair, "
        "and grade each rater's gold accuracy. Every key must be a question of the project and every answer "
        "one that question allows; a 400 names each bad key. Judgments already made are kept.",
        request=PairGoldInputSerializer,
        responses={200: PairDetailSerializer, 400: GOLD_ERRORS, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
        examples=[
            OpenApiExample("mark", value={"gold_answers": {"final_verdict": "a", "consistency": ["a", "tie"]}},
                           request_only=True),
            OpenApiExample("unmark", value={"gold_answers": None}, request_only=True),
            OpenApiExample("marked", value=PAIR_DETAIL_EXAMPLE, response_only=True),
        ],
    )
    def patch(self, request, pair_id: int):
        pair = Pair.objects.filter(pk=pair_id).first()
        if pair is None:
            raise Http404("No Pair matches the given query.")
        serializer = PairGoldInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            pair_gold_set(pair=pair, gold_answers=serializer.validated_data["gold_answers"])
        except GoldAnswersError as exc:
            errors = {key or "gold_answers": [message] for key, message in exc.errors.items()}
            return Response({"gold_answers": errors}, status=400)
        return Response(PairDetailSerializer(pair_detail(pair_id=pair.pk)).data)
