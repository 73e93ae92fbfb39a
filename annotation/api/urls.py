from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

from annotation.api import imports

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
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
