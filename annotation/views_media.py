"""Video and poster bytes, only to logged-in members of the video's project.

URLs carry the video's random public id, never a generator or file name (raters are blind).
"""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from annotation.models import Video
from annotation.range_files import serve_media
from annotation.selectors.projects import project_role


def _video_for(request: HttpRequest, public_id: UUID) -> Video:
    video = Video.objects.filter(public_id=public_id).only("id", "project_id", "browser", "poster").first()
    # Same answer for "no such video" and "not yours": do not reveal which ids exist.
    if video is None or project_role(project_id=video.project_id, user=request.user) is None:
        raise Http404("no such video")
    return video


@require_GET
@login_required
def video_file(request: HttpRequest, public_id: UUID) -> HttpResponse:
    video = _video_for(request, public_id)
    if not video.browser:
        raise Http404("video not ready")
    return serve_media(request, video.browser, content_type="video/mp4")


@require_GET
@login_required
def poster_file(request: HttpRequest, public_id: UUID) -> HttpResponse:
    video = _video_for(request, public_id)
    if not video.poster:
        raise Http404("poster not ready")
    return serve_media(request, video.poster, content_type="image/jpeg")
