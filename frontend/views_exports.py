"""The project's exports page: choose kind, format and options; download, or follow a job."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotation.exports.spec import AGGREGATIONS, FORMATS, KINDS, VIDEO_REFS
from annotation.models import ExportJob, Generator, Judgment, Membership, Project, Question
from annotation.selectors.projects import project_role
from annotation.services.exports import export_sync_max_judgments


@login_required
def project_exports(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    if project_role(project_id=project.pk, user=request.user) != Membership.ROLE_MANAGER:
        raise Http404("no such project")
    judgments = Judgment.objects.filter(project=project).count()
    threshold = export_sync_max_judgments()
    return render(
        request,
        "frontend/exports.html",
        {
            "project": project,
            "questions": Question.objects.filter(project=project),
            "generators": Generator.objects.filter(project=project).order_by("name"),
            "jobs": ExportJob.objects.filter(project=project).order_by("-id")[:20],
            "judgments": judgments,
            "threshold": threshold,
            "large": judgments > threshold,
            "kinds": KINDS,
            "formats": FORMATS,
            "aggregations": AGGREGATIONS,
            "video_refs": VIDEO_REFS,
        },
    )
