"""Crowd entry pages: the invite link, and the completion code of a rater who is done.

``GET /join/<token>/?PROLIFIC_PID=…&STUDY_ID=…&SESSION_ID=…`` (or ``?worker_id=…``) logs the
worker into their own crowd account (see ``annotation.services.crowd``) and sends them to the
rating page. Without a worker id the page explains what the link needs and lets the worker type
it (never a password). A wrong, rotated or disabled token is a 404 page saying so.
"""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from annotation.models import Project
from annotation.selectors.crowd import rater_completion
from annotation.services.crowd import CrowdEntryError, InviteInvalid, crowd_rater_enter, project_for_invite

#: URL parameters that carry the worker id, in order of preference (Prolific's, then generic).
WORKER_ID_PARAMS = ("PROLIFIC_PID", "worker_id")
_TOKEN_MAX = 200
_AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _worker_id(request: HttpRequest) -> tuple[str, str]:
    """(the parameter's name, its value) of the first worker-id parameter present, or ("", "")."""
    for name in WORKER_ID_PARAMS:
        if name in request.GET:
            return name, request.GET[name]
    return "", ""


@never_cache
@require_GET
def join(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if len(token) > _TOKEN_MAX:
            raise InviteInvalid()
        project = project_for_invite(token=token)
    except InviteInvalid:
        return render(request, "frontend/join_invalid.html", status=404)
    param, worker_id = _worker_id(request)
    context = {"project": project, "token": token, "param": param or "worker_id", "worker_id": worker_id}
    if not param:
        return render(request, "frontend/join.html", context)
    try:
        user = crowd_rater_enter(
            project=project,
            token=token,
            external_id=worker_id,
            study_id=request.GET.get("STUDY_ID", ""),
            session_id=request.GET.get("SESSION_ID", ""),
        )
    except InviteInvalid:  # rotated between the two reads
        return render(request, "frontend/join_invalid.html", status=404)
    except CrowdEntryError as exc:
        return render(request, "frontend/join.html", {**context, "error": exc.message}, status=400)
    if request.user.is_authenticated and request.user.pk != user.pk:
        # Someone else is logged in in this browser (a manager trying the link, or another
        # worker on a shared machine): end that session first, so that nothing of theirs (their
        # session data, their manager pages) carries over into the worker's, and the worker's
        # judgments are never stored under the other account.
        logout(request)
    if request.user.pk != user.pk:
        login(request, user, backend=_AUTH_BACKEND)  # a new session key (no fixation)
    return redirect("frontend:rate", pk=project.pk)


@never_cache
@require_GET
def rate_completion(request: HttpRequest, pk: int) -> JsonResponse:
    """The completion code and return link, once the rater has earned them (see
    ``rater_completion``); 404 with ``code: not_earned`` otherwise."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Log in first.", "code": "not_authenticated"}, status=403)
    project = Project.objects.filter(pk=pk).first()
    completion = rater_completion(project=project, rater=request.user) if project is not None else None
    if completion is None:
        return JsonResponse({"detail": "There is no completion code for you yet.", "code": "not_earned"}, status=404)
    return JsonResponse(
        {
            "reason": completion.reason,
            "judged": completion.judged,
            "completion_code": completion.code,
            "completion_url": completion.url,
        }
    )
