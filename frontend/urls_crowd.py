from django.urls import path

from frontend import views_crowd

urlpatterns = [
    path("join/<str:token>/", views_crowd.join, name="join"),
    path("projects/<id:pk>/rate/completion/", views_crowd.rate_completion, name="rate-completion"),
]
