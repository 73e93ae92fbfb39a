"""Quality-control pages for project managers: the raters (report, pause/resume, exclude/include,
the invite link and crowd settings) and the gold pairs (mark with expected answers, unmark).

Plain POST forms with CSRF that call the services and redirect back (they work without
JavaScript); a refused form is shown again with its errors and stores nothing. A project's
raters get 403 here, everyone else who is not its manager 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Membership, Project
from annotation.selectors import quality as q
from annotation.selectors.projects import project_role
from annotation.selectors.quality import project_rater_report
from annotation.services.crowd import (
    CrowdSettingsError,
    project_crowd_settings_update,
    project_invite_disable,
    project_invite_rotate,
)
from annotation.services.quality import (
    RaterNotFound,
    rater_exclude,
    rater_include,
    rater_pause,
    rater_resume,
)

#: Readable names of the report's flag codes, with what each means (an unknown code shows as it is).
FLAG_LABELS = {
    q.RATER_FLAG_SIDE_BIAS: (
        "Side bias",
        f"Picks one side (left or right as shown) more often than chance: p < {q.SIDE_BIAS_P_VALUE} "
        f"over at least {q.SIDE_BIAS_MIN_JUDGMENTS} judgments.",
    ),
    q.RATER_FLAG_STRAIGHTLINING: (
        "Same answer everywhere",
        f"One answer on at least {q.STRAIGHTLINING_SHARE:.0%} of all their answers "
        f"(at least {q.STRAIGHTLINING_MIN_JUDGMENTS} judgments).",
    ),
    q.RATER_FLAG_LOW_AGREEMENT: (
        "Low agreement",
        f"Agrees with the other raters' majority at least {q.LOW_AGREEMENT_MARGIN:.0%} less often than "
        f"the project does, significantly (p < {q.LOW_AGREEMENT_P_VALUE}).",
    ),
    q.RATER_FLAG_TOO_FAST: (
        "Too fast",
        f"At least {q.TOO_FAST_SHARE:.0%} of their judgments came sooner than the project's too-fast threshold.",
    ),
    q.RATER_FLAG_GOLD_BELOW_THRESHOLD: (
        "Gold accuracy low",
        "Gold accuracy below the project's threshold after its minimum number of gold judgments.",
    ),
}
ANSWER_LABELS = {"a": "A", "b": "B", "tie": "Tie"}
PAUSE_REASON_MAX = Membership._meta.get_field("paused_reason").max_length
PROLIFIC_PARAMS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


def managed_project(request: HttpRequest, pk: int) -> Project:
    """The project if the user manages it; 403 for its raters, 404 for everyone else."""
    role = project_role(project_id=pk, user=request.user)
    if role is None:
        raise Http404("no such project")
    if role != Membership.ROLE_MANAGER:
        raise PermissionDenied("only the project's managers see this page")
    return get_object_or_404(Project, pk=pk)


# --- raters ---------------------------------------------------------------------------------


def _percent(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _badge(code: str, row: dict[str, Any]) -> dict[str, str]:
    label, help_text = FLAG_LABELS.get(code, (code, ""))
    if code == q.RATER_FLAG_STRAIGHTLINING and row.get("straightlining_answer"):
        label = f"{label} ({row['straightlining_answer']})"
    return {"code": code, "label": label, "help": help_text}


def _report_rows(project: Project) -> list[dict[str, Any]]:
    rows = []
    for row in project_rater_report(project=project):
        gold_judged = row.get("gold_judged") or 0
        rows.append(
            {
                **row,
                "gold_text": (
                    f"{_percent(row['gold_accuracy'])} ({row['gold_correct']}/{gold_judged})"
                    if row.get("gold_accuracy") is not None
                    else "no golds"
                ),
                "median_text": "–" if row.get("median_seconds") is None else f"{row['median_seconds']:.1f} s",
                "p_left_text": _percent(row.get("p_left")),
                "p_value_text": _number(row.get("p_left_p_value"), 3),
                "loo_text": _percent(row.get("loo_agreement")),
                "flag_badges": [_badge(code, row) for code in row.get("flags") or []],
            }
        )
    return rows


def _invite_urls(request: HttpRequest, project: Project) -> dict[str, str]:
    if not project.invite_token:
        return {}
    base = request.build_absolute_uri(reverse("frontend:join", args=[project.invite_token]))
    return {"plain": base, "prolific": f"{base}?{PROLIFIC_PARAMS}"}


def _raters_page(
    request: HttpRequest,
    project: Project,
    *,
    settings_errors: dict[str, str] | None = None,
    settings_values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    rows = _report_rows(project)
    values = settings_values or {
        "rater_quota": "" if project.rater_quota is None else str(project.rater_quota),
        "completion_code": project.completion_code,
        "completion_url": project.completion_url,
    }
    return render(
        request,
        "frontend/raters.html",
        {
            "project": project,
            "rows": rows,
            "excluded_count": sum(1 for r in rows if r.get("excluded")),
            "paused_count": sum(1 for r in rows if r.get("paused")),
            "invite": _invite_urls(request, project),
            "settings_values": values,
            "settings_errors": settings_errors or {},
            "pause_reason_max": PAUSE_REASON_MAX,
        },
        status=status,
    )


@login_required
@require_GET
def raters_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _raters_page(request, managed_project(request, pk))


def _rater_action(request: HttpRequest, pk: int, rater_id: int, action: str) -> HttpResponse:
    project = managed_project(request, pk)
    try:
        if action == "pause":
            reason = request.POST.get("reason", "").strip()
            if len(reason) > PAUSE_REASON_MAX:
                messages.error(
                    request,
                    f"The reason is {len(reason)} characters long; at most {PAUSE_REASON_MAX}. Nothing changed.",
                )
                return redirect("frontend:project-raters", pk=project.pk)
            rater_pause(project=project, rater_id=rater_id, reason=reason, automatic=False)
            done = "paused"
        elif action == "resume":
            rater_resume(project=project, rater_id=rater_id)
            done = "resumed"
        elif action == "exclude":
            rater_exclude(project=project, rater_id=rater_id)
            done = "excluded: their judgments are left out of analysis and exports (nothing is deleted)"
        else:
            rater_include(project=project, rater_id=rater_id)
            done = "included again in analysis and exports"
    except RaterNotFound:
        messages.error(request, f"Rater #{rater_id} is not a rater of this project. Nothing changed.")
        return redirect("frontend:project-raters", pk=project.pk)
    name = Membership.objects.filter(project=project, user_id=rater_id).values_list("user__username", flat=True).first()
    messages.success(request, f"{name or f'Rater #{rater_id}'} {done}.")
    return redirect(f"{reverse('frontend:project-raters', args=[project.pk])}#rater-{rater_id}")


@login_required
@require_POST
def rater_pause_view(request: HttpRequest, pk: int, rater_id: int) -> HttpResponse:
    return _rater_action(request, pk, rater_id, "pause")


@login_required
@require_POST
def rater_resume_view(request: HttpRequest, pk: int, rater_id: int) -> HttpResponse:
    return _rater_action(request, pk, rater_id, "resume")


@login_required
@require_POST
def rater_exclude_view(request: HttpRequest, pk: int, rater_id: int) -> HttpResponse:
    return _rater_action(request, pk, rater_id, "exclude")


@login_required
@require_POST
def rater_include_view(request: HttpRequest, pk: int, rater_id: int) -> HttpResponse:
    return _rater_action(request, pk, rater_id, "include")


@login_required
@require_POST
def crowd_settings_update(request: HttpRequest, pk: int) -> HttpResponse:
    project = managed_project(request, pk)
    values = {name: request.POST.get(name, "") for name in ("rater_quota", "completion_code", "completion_url")}
    try:
        project_crowd_settings_update(project=project, **values)
    except CrowdSettingsError as exc:
        return _raters_page(request, project, settings_errors=exc.errors, settings_values=values, status=400)
    messages.success(request, "Crowd settings saved.")
    return redirect(f"{reverse('frontend:project-raters', args=[project.pk])}#crowd")


@login_required
@require_POST
def invite_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    project = managed_project(request, pk)
    had_link = bool(project.invite_token)
    project_invite_rotate(project=project)
    messages.success(
        request, "New invite link made; the previous one no longer works." if had_link else "Invite link made."
    )
    return redirect(f"{reverse('frontend:project-raters', args=[project.pk])}#crowd")


@login_required
@require_POST
def invite_disable(request: HttpRequest, pk: int) -> HttpResponse:
    project = managed_project(request, pk)
    project_invite_disable(project=project)
    messages.success(request, "Invite link disabled: nobody new can join through it.")
    return redirect(f"{reverse('frontend:project-raters', args=[project.pk])}#crowd")
