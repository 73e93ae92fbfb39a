"""Exports page URL; included by frontend.urls inside the ``frontend`` namespace."""

from django.urls import path

from frontend import views_exports

urlpatterns = [
    path("projects/<id:pk>/exports/", views_exports.project_exports, name="project-exports"),
]
