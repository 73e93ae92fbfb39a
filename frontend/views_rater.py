"""The rater page: one server-rendered shell; the pairs come from the rater API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.models import Assignment, Membership
from annotation.selectors.assignments import rater_project_context

SPEEDS = ("0.25", "0.5", "0.75", "1", "1.25", "1.5", "2")


@login_required
@ensure_csrf_cookie
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    ctx = rater_project_context(project_id=pk, user=request.user)
    # Only the project's raters: managers know the generators, their judgments would not be blind.
    if ctx is None or ctx.role != Membership.ROLE_RATER:
        raise Http404("no such project")
    # A rater who came in through the invite link (a crowd worker) sees no links to other pages.
    crowd = Membership.objects.filter(project_id=pk, user_id=request.user.pk).exclude(external_id="").exists()
    return render(
        request,
        "frontend/rate.html",
        {
            "project": ctx.project,
            "crowd": crowd,
            "paused": ctx.paused,
            "paused_reason": ctx.paused_reason,
            "next_url": reverse("api-assignment-next", args=[ctx.project.pk]),
            "completion_url": reverse("frontend:rate-completion", args=[ctx.project.pk]),
            "skip_reasons": Assignment.SKIP_REASONS,
            "speeds": SPEEDS,
        },
    )
