"""The manager's analysis dashboard: rankings, agreement, metric alignment, position bias.

The page reads the project's one cached analysis (shared with the API) and never computes it:
a stale result is shown with an "updating" note while a background refresh runs; before the
first result exists the page says "computing…" and polls ``?status=1`` (a small JSON answer
from the same cache read) until it can reload with the result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from annotation.models import Generator
from annotation.selectors.analysis import AnalysisParams, AnalysisRead, project_analysis
from annotation.selectors.dashboard import dashboard_page_data
from frontend.views import _managed_project


def _int_list(values: list[str]) -> list[int]:
    parts = (part.strip() for value in values for part in value.split(","))
    return sorted({int(part) for part in parts if part.isdigit()})


def _status(read: AnalysisRead) -> dict[str, Any]:
    """What the page shows about the result it holds (also the ``?status=1`` poll answer)."""
    entry = read.entry or {}
    return {
        "state": read.state,
        "refreshing": read.refreshing,
        "computed_at": entry.get("computed_at"),
        "n_judgments": entry.get("n_judgments"),
        "excluded_raters": entry.get("excluded_raters", []),
        "gold_pairs": entry.get("gold_pairs", 0),
    }


@login_required
def dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    project = _managed_project(request, pk)
    known = list(Generator.objects.filter(project=project).order_by("name").values_list("name", flat=True))
    generators = sorted({g for g in request.GET.getlist("generator") if g in known})
    if len(generators) < 2:  # a ranking needs at least two generators; fewer means no filter
        generators = []
    raters = _int_list(request.GET.getlist("rater"))
    questions = list(project.questions.all())
    params = AnalysisParams(generators=tuple(generators), raters=tuple(raters))
    read = project_analysis(project=project, params=params, questions=[q.key for q in questions])
    status = _status(read)
    if request.GET.get("status"):
        return JsonResponse(status)
    selected = request.GET.get("question") or (questions[0].key if questions else "")
    if selected not in {q.key for q in questions} and questions:
        selected = questions[0].key
    data = (
        dashboard_page_data(entry=read.entry, params_filters={"generators": generators, "raters": raters})
        if read.entry
        else {}
    )
    return render(
        request,
        "frontend/dashboard.html",
        {
            "project": project,
            "analysis": data,
            "status": status,
            "questions": questions,
            "selected_question": selected,
            "all_generators": known,
            "selected_generators": generators,
            "selected_raters": raters,
            "computed_at": datetime.fromisoformat(status["computed_at"]) if status["computed_at"] else None,
            "debounce_seconds": settings.DASHBOARD_REFRESH_DEBOUNCE_SECONDS,
        },
    )
