"""Reads for crowd entry: whether a rater has earned the project's completion code."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.models import Assignment, Membership, Pair, Project

COMPLETION_QUOTA = "quota_reached"
COMPLETION_ALL_DONE = "all_done"


@dataclass(frozen=True)
class Completion:
    """What the rater page shows a rater who is done: why, the code and the return link."""

    reason: str
    judged: int
    code: str
    url: str


def rater_completion(*, project: Project, rater: AbstractBaseUser) -> Completion | None:
    """The completion panel's contents for ``rater`` in ``project``, or None when not earned.

    Earned when the rater is an active (not paused) rater of the project and either has as many
    judgments as the project's ``rater_quota``, or has judged at least one pair and no pair is
    left that the assignment engine could lease them now (and they hold no lease). None, too,
    when the project has neither a completion code nor a return link: there is nothing to show
    beyond the page's own thanks. The code is never handed out before it is earned: the page
    asks for it only once the rater API said the rater is done, and this check repeats the rule.
    """
    if not (project.completion_code or project.completion_url):
        return None
    membership = Membership.objects.filter(project_id=project.pk, user_id=rater.pk).only("role", "paused").first()
    if membership is None or membership.role != Membership.ROLE_RATER or membership.paused:
        return None
    # Counted as the rater API counts the quota: the rater's judged assignments in the project.
    judged = Assignment.objects.filter(
        project_id=project.pk, rater_id=rater.pk, status=Assignment.STATUS_JUDGED
    ).count()
    if project.rater_quota is not None and judged >= project.rater_quota:
        return Completion(COMPLETION_QUOTA, judged, project.completion_code, project.completion_url)
    if judged == 0 or _work_left(project=project, rater=rater):
        return None
    return Completion(COMPLETION_ALL_DONE, judged, project.completion_code, project.completion_url)


def _work_left(*, project: Project, rater: AbstractBaseUser) -> bool:
    """True while the rater holds a lease or the engine could lease them a pair now.

    The engine's own condition for normal pairs (``annotation.services.assignments``): a pair
    with a free overlap slot that the rater has not judged, skipped or leased. Gold pairs are
    extras the engine mixes in at ``gold_rate``; once the normal pairs are done the engine
    answers 204 (nothing left), so unseen gold pairs do not count as work left.
    """
    mine = Assignment.objects.filter(project_id=project.pk, rater_id=rater.pk)
    if mine.filter(holds_slot=True, expires_at__gt=timezone.now()).exists():
        return True
    seen = mine.filter(pair_id=OuterRef("pk")).filter(~Q(status=Assignment.STATUS_ACTIVE) | Q(holds_slot=True))
    return (
        Pair.objects.filter(project_id=project.pk, is_gold=False)
        .alias(used=F("judgment_count") + F("lease_count"))
        .filter(used__lt=project.overlap)
        .filter(~Exists(seen))
        .exists()
    )
