"""Dashboard URLs, included by frontend.urls (app namespace "frontend")."""

from django.urls import path

from frontend import views_dashboard

urlpatterns = [
    path("projects/<id:pk>/dashboard/", views_dashboard.dashboard, name="dashboard"),
]
