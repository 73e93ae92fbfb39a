from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotation import views_media
from frontend import views, views_auth

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views_auth.LoginView.as_view(), name="login"),  # throttled sign-in
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<id:pk>/", views.project_detail, name="project"),
    path("projects/<id:pk>/pairs/generate/", views.project_generate_pairs, name="project-generate-pairs"),
    path("projects/<id:pk>/imports/<id:import_id>/", views.import_detail, name="import"),
    path("media/v/<uuid:public_id>.mp4", views_media.video_file, name="media-video"),
    path("media/p/<uuid:public_id>.jpg", views_media.poster_file, name="media-poster"),
    path("", include("frontend.urls_rater")),
    path("", include("frontend.urls_dashboard")),
    path("", include("frontend.urls_exports")),
    path("", include("frontend.urls_crowd")),
    path("", include("frontend.urls_raters")),
]
