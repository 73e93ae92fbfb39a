from django.urls import path

from frontend import views_rater

urlpatterns = [
    path("projects/<id:pk>/rate/", views_rater.rate, name="rate"),
]
