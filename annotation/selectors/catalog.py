"""Reads for the manager API's plain listings: generators, prompts, videos (with scores), pairs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from annotation.models import Generator, Pair, Prompt, Video

logger = logging.getLogger(__name__)


def generators_list(*, project_id: int) -> QuerySet[Generator]:
    return Generator.objects.filter(project_id=project_id).order_by("id")


def prompts_list(*, project_id: int, search: str = "") -> QuerySet[Prompt]:
    qs = Prompt.objects.filter(project_id=project_id)
    if search:
        qs = qs.filter(Q(external_id=search) | Q(text__icontains=search))
    return qs


def videos_list(*, project_id: int, generator: str = "", status: str = "") -> QuerySet[Video]:
    qs = Video.objects.filter(project_id=project_id).select_related("prompt", "generator")
    if generator:
        qs = qs.filter(generator__name=generator)
    if status:
        qs = qs.filter(status=status)
    return qs


def pairs_list(*, project_id: int, generator: str = "", is_gold: bool | None = None) -> QuerySet[Pair]:
    qs = Pair.objects.filter(project_id=project_id).select_related("prompt", "generator_a", "generator_b")
    if generator:
        qs = qs.filter(Q(generator_a__name=generator) | Q(generator_b__name=generator))
    if is_gold is not None:
        qs = qs.filter(is_gold=is_gold)
    return qs


def pair_detail(*, pair_id: int) -> Pair | None:
    return (
        Pair.objects.select_related("prompt", "generator_a", "generator_b", "video_a", "video_b")
        .filter(pk=pair_id)
        .first()
    )


def video_urls(video: Video) -> dict[str, str | None]:
    """Media URLs of a video (served with Range support; poster only once made)."""
    return {
        "url": reverse("frontend:media-video", kwargs={"public_id": video.public_id}),
        "poster_url": reverse("frontend:media-poster", kwargs={"public_id": video.public_id}) if video.poster else None,
    }


def video_scores(*, video_ids: Sequence[int]) -> tuple[dict[int, list[dict[str, Any]]], str]:
    """Metric scores per video id (one query) and '' — or {} and why scores are unavailable."""
    try:
        from metrics.selectors import scores_for_videos  # noqa: PLC0415 - optional app
    except ImportError as exc:  # pragma: no cover - metrics app not installed
        logger.warning("metric scores unavailable: %s", exc)
        return {}, f"metric scores unavailable: {exc}"
    return scores_for_videos(video_ids=list(video_ids)), ""


class ScoresUnavailable(RuntimeError):
    """The metrics app (or its selectors/services) is not installed."""


def scores_list(*, project_id: int, metric: str = "", generator: str = "", status: str = "") -> QuerySet:
    """Stored metric scores of the project's videos (computed and imported), in id order."""
    try:
        from metrics.models import MetricScore  # noqa: PLC0415 - optional app
    except ImportError as exc:  # pragma: no cover - metrics app not installed
        raise ScoresUnavailable(f"metric scores are unavailable: {exc}") from exc
    qs = MetricScore.objects.filter(video__project_id=project_id).select_related("video__prompt", "video__generator")
    if metric:
        qs = qs.filter(metric=metric)
    if generator:
        qs = qs.filter(video__generator__name=generator)
    if status:
        qs = qs.filter(status=status)
    return qs
