"""The manager's analysis dashboard: rankings, agreement, metric alignment, position bias."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Generator
from annotation.selectors.dashboard import project_analysis
from frontend.views import _managed_project

DASHBOARD_BOOTSTRAP_ROUNDS = 1000


def _int_list(values: list[str]) -> list[int]:
    parts = (part.strip() for value in values for part in value.split(","))
    return sorted({int(part) for part in parts if part.isdigit()})


@login_required
def dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    project = _managed_project(request, pk)
    known = list(Generator.objects.filter(project=project).order_by("name").values_list("name", flat=True))
    generators = sorted({g for g in request.GET.getlist("generator") if g in known})
    if len(generators) < 2:  # a ranking needs at least two generators; fewer means no filter
        generators = []
    raters = _int_list(request.GET.getlist("rater"))
    result = project_analysis(
        project_id=project.pk, bootstrap_rounds=DASHBOARD_BOOTSTRAP_ROUNDS, generators=generators, raters=raters
    )
    questions = list(project.questions.all())
    selected = request.GET.get("question") or (questions[0].key if questions else "")
    if selected not in {q.key for q in questions} and questions:
        selected = questions[0].key
    return render(
        request,
        "frontend/dashboard.html",
        {
            "project": project,
            "analysis": result,
            "questions": questions,
            "selected_question": selected,
            "all_generators": known,
            "selected_generators": generators,
            "selected_raters": raters,
        },
    )
