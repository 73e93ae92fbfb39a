"""Server-rendered pages for project managers (the rater page lives in views_rater)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.models import ImportJob, Membership, Project
from annotation.selectors.assignments import project_raters, skip_counts, skips_recent
from annotation.selectors.imports import import_report, import_summaries, project_overview
from annotation.selectors.projects import project_role, projects_for_user
from annotation.services.pairs import pairs_generate


def _managed_project(request: HttpRequest, pk: int) -> Project:
    project = get_object_or_404(Project, pk=pk)
    if project_role(project_id=project.pk, user=request.user) != Membership.ROLE_MANAGER:
        raise Http404("no such project")
    return project


@login_required
def home(request: HttpRequest) -> HttpResponse:
    managed = projects_for_user(user=request.user, role=Membership.ROLE_MANAGER)
    rated = projects_for_user(user=request.user, role=Membership.ROLE_RATER)
    return render(request, "frontend/home.html", {"managed": managed, "rated": rated})


@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = _managed_project(request, pk)
    jobs = import_summaries(project_id=project.pk, limit=20)
    metric_status = []
    try:
        from metrics.selectors import metric_status_for_project  # noqa: PLC0415

        metric_status = metric_status_for_project(project_id=project.pk)
    except ImportError:
        pass
    return render(
        request,
        "frontend/project_detail.html",
        {
            "project": project,
            "overview": project_overview(project_id=project.pk),
            "jobs": jobs,
            "metric_status": metric_status,
            "questions": project.questions.all(),
            # Raters section: who judges, their counts, and the latest skips with reasons.
            "raters": project_raters(project=project),
            "skips": skips_recent(project=project, limit=20),
            "skip_counts": skip_counts(project=project),
        },
    )


@login_required
def import_detail(request: HttpRequest, pk: int, import_id: int) -> HttpResponse:
    project = _managed_project(request, pk)
    job = get_object_or_404(ImportJob, pk=import_id, project=project)
    return render(request, "frontend/import_detail.html", {"project": project, "report": import_report(job=job)})


@require_POST
@login_required
def project_generate_pairs(request: HttpRequest, pk: int) -> HttpResponse:
    project = _managed_project(request, pk)
    created = pairs_generate(project=project)
    messages.success(request, f"{created} new pair(s) generated.")
    return redirect("frontend:project", pk=project.pk)
