"""Rater endpoints: lease the next pair, submit a judgment, skip.

Blind by construction: responses carry the prompt, media URLs made of random public ids, the
rubric and the rater's own progress; never generator names, file names, others' answers, or
whether a pair is a gold pair. Another rater's assignment answers 404, exactly like one that
does not exist. A paused rater's 403 is calm and never says why (the reason is the managers').
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import get_script_prefix, reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Assignment, Membership
from annotation.selectors.assignments import (
    PreparedStatement,
    RaterProjectContext,
    assignment_context,
    rater_project_context,
)
from annotation.services.assignments import (
    AssignmentClosed,
    Lease,
    LeasedVideo,
    RaterActionError,
    SkipReasonInvalid,
    assignment_next,
    assignment_skip,
)
from annotation.services.judgments import (
    AnswersDiffer,
    AnswersInvalid,
    AssignmentMissing,
    LeaseExpired,
    judgment_submit,
    question_choices,
)

# --- authentication -------------------------------------------------------------------------


@functools.cache
def _token_statement() -> tuple[PreparedStatement, tuple[str, ...]]:
    user_model = get_user_model()
    fields = tuple(f.attname for f in user_model._meta.concrete_fields)
    columns = ", ".join(f'u."{f.column}"' for f in user_model._meta.concrete_fields)
    sql = (
        f'SELECT t."created", {columns} FROM "{Token._meta.db_table}" AS t '
        f'JOIN "{user_model._meta.db_table}" AS u ON u."{user_model._meta.pk.column}" = t."user_id" '
        'WHERE t."key" = %(key)s'
    )
    return PreparedStatement("vj_token_user", sql, {"key": "varchar"}), fields


class RaterTokenAuthentication(TokenAuthentication):
    """DRF's token authentication (same header, same errors), as one prepared statement.

    The rater loop runs this on every call; the token and its user come back in one row.
    """

    def authenticate_credentials(self, key: str):
        statement, fields = _token_statement()
        with connection.cursor() as cursor:
            statement.execute(cursor, {"key": key})
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = get_user_model().from_db("default", fields, row[1:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token.from_db("default", ("key", "user_id", "created"), (key, user.pk, row[0]))
        token.user = user
        return user, token


class RaterTokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for the same API token on the rater endpoints (its own component:
    drf-spectacular keys security schemes by authentication class)."""

    target_class = RaterTokenAuthentication
    name = "raterTokenAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=RaterTokenAuthentication.keyword
        )
        scheme["description"] = "The API token from POST /api/v1/auth/token/, as `Authorization: Token <key>`."
        return scheme


class RaterApiView(APIView):
    """Base of the rater endpoints: token or session auth; JSON out (a hot loop: no
    browsable-API negotiation)."""

    authentication_classes = [RaterTokenAuthentication, SessionAuthentication]
    renderer_classes = [JSONRenderer]


# --- shared shapes --------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(help_text="Stable machine-readable reason.")


class QuotaReachedSerializer(ErrorSerializer):
    completion_code = serializers.CharField(allow_blank=True, help_text="The project's completion code, or \"\".")
    completion_url = serializers.CharField(allow_blank=True, help_text="Where to return to, or \"\".")


class AnswersErrorSerializer(ErrorSerializer):
    answers = serializers.DictField(
        child=serializers.CharField(), help_text="Question key -> why its answer was refused."
    )


_STATUS_FOR = {
    AnswersInvalid: status.HTTP_400_BAD_REQUEST,
    SkipReasonInvalid: status.HTTP_400_BAD_REQUEST,
    AssignmentMissing: status.HTTP_404_NOT_FOUND,
    AnswersDiffer: status.HTTP_409_CONFLICT,
    AssignmentClosed: status.HTTP_409_CONFLICT,
    LeaseExpired: status.HTTP_410_GONE,
}


def _refused(exc: RaterActionError) -> Response:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if isinstance(exc, AnswersInvalid):
        body["answers"] = exc.errors
    return Response(body, status=_STATUS_FOR.get(type(exc), status.HTTP_400_BAD_REQUEST))


def _error(message: str, code: str, http_status: int) -> Response:
    return Response({"detail": message, "code": code}, status=http_status)


#: What a paused rater reads: calm, not accusing, and never the reason (that is for managers).
PAUSED_MESSAGE = (
    "There are no pairs for you to rate in this project right now. Thank you for your work so far; "
    "you may close this page."
)
QUOTA_MESSAGE = "You have judged all the pairs this project asks of one rater. Thank you!"


_NOT_FOUND_ASSIGNMENT = OpenApiResponse(
    ErrorSerializer, description="No such assignment, or it belongs to another rater (the same answer)."
)


# --- next -----------------------------------------------------------------------------------


class VideoOutputSerializer(serializers.Serializer):
    video = serializers.CharField(help_text="MP4 URL (random id; Range requests supported).")
    poster = serializers.CharField(allow_null=True, help_text="JPEG poster URL, or null.")
    fps = serializers.FloatField(allow_null=True)
    duration = serializers.FloatField(allow_null=True, help_text="Seconds.")


class QuestionOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    text = serializers.CharField()
    help_text = serializers.CharField(allow_blank=True)
    choices = serializers.ListField(
        child=serializers.ChoiceField(choices=["left", "tie", "right"]),
        help_text="The answers this question allows, in page terms.",
    )
    required = serializers.BooleanField()


class ProgressSerializer(serializers.Serializer):
    judged = serializers.IntegerField(help_text="Pairs this rater judged in the project.")
    available = serializers.IntegerField(help_text="judged + the open pairs still available to this rater.")


class PrefetchSerializer(serializers.Serializer):
    videos = serializers.ListField(child=serializers.CharField())
    posters = serializers.ListField(child=serializers.CharField(allow_null=True))


class NextOutputSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    prompt = serializers.CharField()
    left = VideoOutputSerializer()
    right = VideoOutputSerializer()
    questions = QuestionOutputSerializer(many=True)
    expires_at = serializers.DateTimeField()
    resumed = serializers.BooleanField(help_text="True when this is the lease the rater already held.")
    require_full_watch = serializers.BooleanField()
    progress = ProgressSerializer()
    prefetch = PrefetchSerializer(
        allow_null=True,
        help_text="The videos of the pair this rater will most likely get next (not leased): "
        "a page may load them early. Null when no other pair is open.",
    )
    judgment_url = serializers.CharField()
    skip_url = serializers.CharField()


@functools.cache
def _url_parts(name: str, script_prefix: str) -> tuple[str, str]:
    # reverse() once per URL name; the ids are then put in by string formatting (a hot path).
    marker = "00000000-0000-0000-0000-000000000000" if name.startswith("frontend:") else "987654321"
    head, tail = reverse(name, args=[marker]).split(marker)
    return head, tail


def _url(name: str, arg: object) -> str:
    head, tail = _url_parts(name, get_script_prefix())
    return f"{head}{arg}{tail}"


def _video_url(video: LeasedVideo) -> str:
    return _url("frontend:media-video", video.public_id)


def _poster_url(video: LeasedVideo) -> str | None:
    return _url("frontend:media-poster", video.public_id) if video.has_poster else None


def _video(video: LeasedVideo) -> dict[str, Any]:
    return {"video": _video_url(video), "poster": _poster_url(video), "fps": video.fps, "duration": video.duration}


def _next_payload(lease: Lease, ctx: RaterProjectContext) -> dict[str, Any]:
    prefetch = None
    if lease.prefetch is not None:
        prefetch = {
            "videos": [_video_url(v) for v in lease.prefetch],
            "posters": [_poster_url(v) for v in lease.prefetch],
        }
    return {
        "assignment": lease.assignment_id,
        "prompt": lease.prompt_text,
        "left": _video(lease.left),
        "right": _video(lease.right),
        "questions": [
            {
                "key": q.key,
                "text": q.text,
                "help_text": q.help_text,
                "choices": question_choices(q, left_is_a=lease.left_is_a),
                "required": q.required,
            }
            for q in ctx.questions
        ],
        "expires_at": lease.expires_at,
        "resumed": lease.resumed,
        "require_full_watch": ctx.project.require_full_watch,
        "progress": {"judged": lease.judged, "available": lease.available},
        "prefetch": prefetch,
        "judgment_url": _url("api-judgment-submit", lease.assignment_id),
        "skip_url": _url("api-assignment-skip", lease.assignment_id),
    }


class AssignmentNextApi(RaterApiView):
    @extend_schema(
        request=None,
        responses={
            200: NextOutputSerializer,
            204: OpenApiResponse(description="Nothing is left for this rater in this project."),
            403: OpenApiResponse(
                QuotaReachedSerializer,
                description="Not a rater of this project (code not_rater); paused (code paused: a calm message, "
                "no reason); or the rater has judged the project's rater_quota (code quota_reached, with the "
                "project's completion_code and completion_url; those two fields only with this code).",
                examples=[
                    OpenApiExample(
                        "paused", value={"detail": PAUSED_MESSAGE, "code": "paused"}, response_only=True,
                        status_codes=["403"],
                    ),
                    OpenApiExample(
                        "quota reached",
                        value={"detail": QUOTA_MESSAGE, "code": "quota_reached", "completion_code": "C1A2B3",
                               "completion_url": "https://app.prolific.com/submissions/complete?cc=C1A2B3"},
                        response_only=True,
                        status_codes=["403"],
                    ),
                ],
            ),
            404: OpenApiResponse(ErrorSerializer, description="No such project, or not a member of it."),
        },
        summary="Lease the next pair",
        description="Leases the rater the next pair to judge (or gives back the lease they still hold, "
        "so a reload loses nothing). The lease expires at expires_at; the pair then returns to the pool. "
        "A lease already held can still be submitted after a pause or once the quota is reached.",
        tags=["rater"],
    )
    def post(self, request, project_id: int) -> Response:
        ctx = rater_project_context(project_id=project_id, user=request.user)
        if ctx is None:
            return _error("No such project.", "not_found", status.HTTP_404_NOT_FOUND)
        if ctx.role != Membership.ROLE_RATER:
            return _error("Only raters of this project judge its pairs.", "not_rater", status.HTTP_403_FORBIDDEN)
        if ctx.paused:
            return _error(PAUSED_MESSAGE, "paused", status.HTTP_403_FORBIDDEN)
        if ctx.quota_reached:
            body = {
                "detail": QUOTA_MESSAGE,
                "code": "quota_reached",
                "completion_code": ctx.project.completion_code,
                "completion_url": ctx.project.completion_url,
            }
            return Response(body, status=status.HTTP_403_FORBIDDEN)
        lease = assignment_next(project=ctx.project, rater=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The payload is built in NextOutputSerializer's shape (a test holds them equal); it is
        # not passed through the serializer on this hot path, which costs more than the SQL.
        return Response(_next_payload(lease, ctx))


# --- judgment -------------------------------------------------------------------------------


class JudgmentInputSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text='Question key -> "left", "right" or "tie" (as shown on the page).',
    )
    duration_ms = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, help_text="Milliseconds from first display to submit."
    )
    watch_left_seconds = serializers.FloatField(
        min_value=0, required=False, allow_null=True, help_text="Seconds of the left video played."
    )
    watch_right_seconds = serializers.FloatField(
        min_value=0, required=False, allow_null=True, help_text="Seconds of the right video played."
    )


class JudgmentOutputSerializer(serializers.Serializer):
    judgment = serializers.IntegerField()
    assignment = serializers.IntegerField()
    created = serializers.BooleanField(help_text="False when this exact submission was already stored.")


class JudgmentSubmitApi(RaterApiView):
    @extend_schema(
        request=JudgmentInputSerializer,
        responses={
            200: JudgmentOutputSerializer,
            400: OpenApiResponse(
                AnswersErrorSerializer,
                description="A required question is unanswered, a key is unknown or a value is not allowed "
                "(code invalid_answers, with answers: {key: why}); or the body is malformed.",
            ),
            404: _NOT_FOUND_ASSIGNMENT,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Already judged with different answers (answers_differ), or skipped (assignment_closed).",
            ),
            410: OpenApiResponse(
                ErrorSerializer,
                description="The lease expired and the pair has since reached its overlap (lease_expired).",
            ),
        },
        examples=[
            OpenApiExample(
                "Answers",
                value={
                    "answers": {"visual_appeal": "left", "final_verdict": "tie"},
                    "duration_ms": 41250,
                    "watch_left_seconds": 8.2,
                    "watch_right_seconds": 8.0,
                },
                request_only=True,
            )
        ],
        summary="Submit a judgment",
        description="Idempotent: the same submission twice stores one judgment and answers 200 both times.",
        tags=["rater"],
    )
    def post(self, request, assignment_id: int) -> Response:
        ctx = assignment_context(assignment_id=assignment_id, rater=request.user)
        if ctx is None:
            return _error("No such assignment.", "not_found", status.HTTP_404_NOT_FOUND)
        serializer = JudgmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = judgment_submit(
                assignment=ctx.assignment,
                questions=ctx.questions,
                answers=data["answers"],
                pair=ctx.pair,
                duration_ms=data.get("duration_ms"),
                watch_left_seconds=data.get("watch_left_seconds"),
                watch_right_seconds=data.get("watch_right_seconds"),
            )
        except RaterActionError as exc:
            return _refused(exc)
        return Response({"judgment": result.judgment_id, "assignment": assignment_id, "created": result.created})


# --- skip -----------------------------------------------------------------------------------


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Assignment.SKIP_REASONS)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class SkipOutputSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()


class AssignmentSkipApi(RaterApiView):
    @extend_schema(
        request=SkipInputSerializer,
        responses={
            200: SkipOutputSerializer,
            400: OpenApiResponse(description="Unknown reason or a malformed body."),
            404: _NOT_FOUND_ASSIGNMENT,
            409: OpenApiResponse(ErrorSerializer, description="Already judged (assignment_closed)."),
        },
        summary="Skip a pair, with a reason",
        description="The pair is never offered to this rater again; the reason is shown to the project's managers. "
        "Skipping twice is harmless.",
        tags=["rater"],
    )
    def post(self, request, assignment_id: int) -> Response:
        ctx = assignment_context(assignment_id=assignment_id, rater=request.user)
        if ctx is None:
            return _error("No such assignment.", "not_found", status.HTTP_404_NOT_FOUND)
        serializer = SkipInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            assignment = assignment_skip(
                assignment=ctx.assignment,
                reason=serializer.validated_data["reason"],
                note=serializer.validated_data["note"],
            )
        except RaterActionError as exc:
            return _refused(exc)
        payload = {"assignment": assignment.pk, "status": assignment.status, "reason": assignment.skip_reason}
        return Response(SkipOutputSerializer(payload).data)
