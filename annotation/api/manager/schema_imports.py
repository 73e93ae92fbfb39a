"""OpenAPI details for the import and pair-generation endpoints of ``annotation.api.imports``.

Registered as drf-spectacular view extensions (loaded with the manager URLs) so that those views
get distinct operation ids, their errors and examples without changing their module; the
owner of ``annotation/api/imports.py`` may move these decorators onto the views.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers

from annotation.api.manager.judgments import IMPORT_REPORT_EXAMPLE
from annotation.api.manager.schema import BAD_REQUEST, NOT_FOUND, PROJECT_ERRORS

_MANIFEST_REPORT = {**IMPORT_REPORT_EXAMPLE, "kind": "manifest", "file_name": "manifest.csv",
                    "row_errors": [{"row": 2, "field": "video", "message": "file not found: missing.mp4"}]}
_REPORT = OpenApiResponse(description="The import report", examples=[OpenApiExample("report", value=_MANIFEST_REPORT)])


class ImportListCreateSchema(OpenApiViewExtension):
    target_class = "annotation.api.imports.ImportListCreateApi"

    def view_replacement(self):  # noqa: ANN201
        return extend_schema_view(
            get=extend_schema(operation_id="imports_list", responses={200: _REPORT, **PROJECT_ERRORS}),
            post=extend_schema(operation_id="imports_create",
                               responses={201: _REPORT, 400: BAD_REQUEST, **PROJECT_ERRORS}),
        )(self.target_class)


class ImportDetailSchema(OpenApiViewExtension):
    target_class = "annotation.api.imports.ImportDetailApi"

    def view_replacement(self):  # noqa: ANN201
        return extend_schema_view(
            get=extend_schema(operation_id="imports_read", responses={200: _REPORT, 404: NOT_FOUND, **PROJECT_ERRORS}),
        )(self.target_class)


class PairGenerateSchema(OpenApiViewExtension):
    target_class = "annotation.api.imports.PairGenerateApi"

    def view_replacement(self):  # noqa: ANN201
        return extend_schema_view(
            post=extend_schema(
                operation_id="pairs_generate",
                examples=[OpenApiExample("created", value={"created": 6}, response_only=True),
                          OpenApiExample("some generators", value={"generators": [1, 2]}, request_only=True)],
                responses={
                    200: inline_serializer("PairGenerateResult", {"created": serializers.IntegerField()}),
                    400: BAD_REQUEST,
                    **PROJECT_ERRORS,
                },
            ),
        )(self.target_class)
