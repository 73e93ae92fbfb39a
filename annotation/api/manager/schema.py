"""Shared OpenAPI pieces: error bodies and the standard error responses of the manager API."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer("ManagerError", {"detail": serializers.CharField()})
ValidationErrorSerializer = inline_serializer(
    "ManagerValidationError",
    {"field_name": serializers.ListField(child=serializers.CharField(), required=False)},
)

UNAUTHENTICATED = OpenApiResponse(
    ErrorSerializer,
    description="No or invalid credentials.",
    examples=[OpenApiExample("anonymous", value={"detail": "Authentication credentials were not provided."})],
)
FORBIDDEN = OpenApiResponse(
    ErrorSerializer,
    description="Not a manager of this project (also answered for projects that do not exist).",
    examples=[OpenApiExample("not a manager", value={"detail": "Only a manager of this project may do this."})],
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No such object in this project.",
    examples=[OpenApiExample("missing", value={"detail": "No Pair matches the given query."})],
)
INVALID_CURSOR = OpenApiResponse(
    ErrorSerializer, description="The cursor is not one this listing handed out.",
    examples=[OpenApiExample("bad cursor", value={"detail": "Invalid cursor"})],
)
BAD_REQUEST = OpenApiResponse(
    ValidationErrorSerializer,
    description="Invalid parameters; one message list per field.",
    examples=[OpenApiExample("bad parameter", value={"question": ["not a question of this project"]})],
)

#: The errors every project-scoped endpoint can answer.
PROJECT_ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN}
