from django.urls import include, path

from annotation.api import auth, imports

urlpatterns = [
    path("auth/token/", auth.TokenObtainApi.as_view(), name="api-token"),  # throttled sign-in
    path("projects/<id:project_id>/imports/", imports.ImportListCreateApi.as_view(), name="api-imports"),
    path(
        "projects/<id:project_id>/imports/<id:import_id>/",
        imports.ImportDetailApi.as_view(),
        name="api-import-detail",
    ),
    path("projects/<id:project_id>/pairs/generate/", imports.PairGenerateApi.as_view(), name="api-pairs-generate"),
    path("", include("annotation.api.urls_rater")),
    path("", include("annotation.api.urls_manager")),
]
