"""Rater endpoints (assignments, judgments, skips)."""

urlpatterns: list = []
