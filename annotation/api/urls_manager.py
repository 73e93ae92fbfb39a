"""Project-manager and training-pipeline endpoints (issue 6)."""

urlpatterns: list = []
