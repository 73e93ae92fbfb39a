"""Quality control writes: gold pairs, and pausing, resuming, excluding and including raters.

- **Gold pairs** carry known answers ``{question key: [accepted answers]}`` (``a``/``b``/``tie``,
  canonical terms; more than one accepted answer, e.g. ``["a", "tie"]``, when a tie is also
  right). The assignment engine offers them at the project's ``gold_rate``, blind like any pair.
- **Pause** stops a rater from getting pairs (their live lease is given back); they keep their
  judgments and see a calm message. A rater is paused automatically when their gold accuracy
  since their last resume falls below the project's ``gold_accuracy_threshold`` after at least
  ``gold_min`` graded gold judgments (:func:`rater_gold_check`; grading rules in
  ``annotation.selectors.quality``), with a reason the manager reads.
- **Resume** lets them work again; from then on only new gold judgments count for the automatic
  pause, so the same evidence does not pause them again at once.
- **Exclude** keeps a rater's judgments but leaves them out of analysis, labels and exports
  (``annotation.selectors.labels`` and the exports read ``Membership.excluded``); **include**
  undoes it. Nothing is ever deleted.

Every change is idempotent and marks the dashboard's cached analysis stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotation.models import CANONICAL_ANSWERS, Membership, Pair, Project, Question
from annotation.selectors.quality import gold_pause_reason, rater_gold_record
from annotation.services.assignments import assignment_release
from annotation.services.dashboard import dashboard_invalidate

#: The reason stored when a manager pauses a rater without giving one.
MANUAL_PAUSE_REASON = "paused by a project manager"
_REASON_MAX = Membership._meta.get_field("paused_reason").max_length


class GoldAnswersError(ValueError):
    """Gold answers that cannot be stored. ``errors`` maps each question key (or ``""`` for the
    whole value) to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key or 'gold_answers'}: {message}" for key, message in errors.items()))
        self.errors = errors


class RaterNotFound(LookupError):
    """No rater with this id in the project (not a member, or a manager)."""

    def __init__(self, *, project_id: int, rater_id: int) -> None:
        super().__init__(f"user {rater_id} is not a rater of project {project_id}")


# --- gold pairs -----------------------------------------------------------------------------


def _accepted_list(key: str, value: Any) -> list[str]:
    """One question's accepted answers from "a", "a|tie" or ["a", "tie"] (case-insensitive)."""
    if isinstance(value, str):
        items = value.split("|")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise GoldAnswersError({key: 'expected "a", "b", "tie", "a|tie" or a list of them'})
    answers: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise GoldAnswersError({key: f"{item!r} is not one of a, b, tie"})
        answer = item.strip().lower()
        if answer not in CANONICAL_ANSWERS:
            raise GoldAnswersError({key: f"{item.strip()[:40]!r} is not one of a, b, tie"})
        if answer not in answers:
            answers.append(answer)
    if not answers:
        raise GoldAnswersError({key: "no accepted answer given"})
    return [a for a in CANONICAL_ANSWERS if a in answers]


_SWAPPED = {"a": "b", "b": "a", "tie": "tie"}


def gold_answers_clean(
    *, gold_answers: Any, questions: Sequence[Question], swapped: bool = False
) -> dict[str, list[str]]:
    """Validate gold answers against the rubric; return them as ``{key: [accepted]}``.

    ``gold_answers`` maps question keys to an answer (``"a"``), answers joined by ``|``
    (``"a|tie"``) or a list (``["a", "tie"]``). Every key must be a question of the project,
    every answer one that question allows, and not every allowed answer may be accepted (such a
    question would grade nothing). ``None`` or ``{}`` gives ``{}``. Raises GoldAnswersError naming
    every bad key. ``swapped``: the answers name the pair's videos in the other order (an
    import row listing generator B first); they are turned into canonical terms before checking.
    """
    if gold_answers is None:
        return {}
    if not isinstance(gold_answers, Mapping):
        raise GoldAnswersError({"": 'expected an object {question key: "a" | "b" | "tie" | [accepted answers]}'})
    by_key = {q.key: q for q in questions}
    errors: dict[str, str] = {}
    cleaned: dict[str, list[str]] = {}
    for key, value in gold_answers.items():
        question = by_key.get(key)
        if question is None:
            errors[str(key)[:64]] = f"not a question of this project (questions: {', '.join(by_key)})"
            continue
        try:
            accepted = _accepted_list(key, value)
        except GoldAnswersError as exc:
            errors.update(exc.errors)
            continue
        if swapped:
            accepted = [a for a in CANONICAL_ANSWERS if _SWAPPED[a] in accepted]
        refused = [a for a in accepted if a not in question.allowed]
        if refused:
            errors[key] = (
                f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not allowed for this question "
                f"(allowed: {', '.join(question.allowed)})"
            )
        elif set(accepted) >= set(question.allowed):
            errors[key] = "every allowed answer is accepted, so this question would grade nothing"
        else:
            cleaned[key] = accepted
    if errors:
        raise GoldAnswersError(errors)
    return cleaned


@transaction.atomic
def pair_gold_set(*, pair: Pair, gold_answers: Mapping[str, Any] | None) -> Pair:
    """Mark ``pair`` as gold with ``gold_answers`` (see :func:`gold_answers_clean`), or unmark it
    with ``None`` / ``{}``. Raises GoldAnswersError and changes nothing when refused.

    Judgments already made of the pair stay; they are graded against the answers as they are now.
    """
    questions = list(Question.objects.filter(project_id=pair.project_id))
    cleaned = gold_answers_clean(gold_answers=gold_answers, questions=questions)
    is_gold = bool(cleaned)
    if (pair.is_gold, pair.gold_answers) != (is_gold, cleaned):
        Pair.objects.filter(pk=pair.pk).update(is_gold=is_gold, gold_answers=cleaned)
        pair.is_gold, pair.gold_answers = is_gold, cleaned
        dashboard_invalidate(project_id=pair.project_id)
    return pair


# --- raters ---------------------------------------------------------------------------------


def _rater_membership(*, project: Project, rater_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .filter(project_id=project.pk, user_id=rater_id, role=Membership.ROLE_RATER)
        .first()
    )
    if membership is None:
        raise RaterNotFound(project_id=project.pk, rater_id=rater_id)
    return membership


def _pause(*, project: Project, rater_id: int, reason: str, automatic: bool) -> tuple[Membership, bool]:
    """(the membership, whether this call paused it); inside the caller's transaction."""
    membership = _rater_membership(project=project, rater_id=rater_id)
    if membership.paused:
        return membership, False
    text = (reason or "").strip() or MANUAL_PAUSE_REASON
    if automatic:
        text = f"automatic: {text}"
    membership.paused = True
    membership.paused_reason = text[:_REASON_MAX]
    membership.paused_at = timezone.now()
    membership.save(update_fields=["paused", "paused_reason", "paused_at"])
    assignment_release(project_id=project.pk, rater_id=rater_id)
    dashboard_invalidate(project_id=project.pk)
    return membership, True


@transaction.atomic
def rater_pause(*, project: Project, rater_id: int, reason: str = "", automatic: bool = False) -> Membership:
    """Pause a rater of ``project``: no more pairs for them, and their live lease is given back.

    ``reason`` is for the project's managers (never shown to the rater); empty gives
    :data:`MANUAL_PAUSE_REASON`; an ``automatic`` pause (the gold check) is stored as
    ``"automatic: <reason>"``. Idempotent: pausing a paused rater changes nothing (the first
    reason stays). Raises RaterNotFound.
    """
    return _pause(project=project, rater_id=rater_id, reason=reason, automatic=automatic)[0]


@transaction.atomic
def rater_resume(*, project: Project, rater_id: int) -> Membership:
    """Let a paused rater of ``project`` work again. Gold judgments before now no longer count
    for the automatic pause. Idempotent. Raises RaterNotFound."""
    membership = _rater_membership(project=project, rater_id=rater_id)
    if not membership.paused:
        return membership
    membership.paused = False
    membership.paused_reason = ""
    membership.resumed_at = timezone.now()
    membership.save(update_fields=["paused", "paused_reason", "resumed_at"])
    dashboard_invalidate(project_id=project.pk)
    return membership


def _excluded_set(*, project: Project, rater_id: int, excluded: bool) -> Membership:
    membership = _rater_membership(project=project, rater_id=rater_id)
    if membership.excluded != excluded:
        membership.excluded = excluded
        membership.save(update_fields=["excluded"])
        dashboard_invalidate(project_id=project.pk)
    return membership


@transaction.atomic
def rater_exclude(*, project: Project, rater_id: int) -> Membership:
    """Leave a rater's judgments out of analysis, labels and exports (kept, never deleted).
    Idempotent; undone by :func:`rater_include`. Raises RaterNotFound."""
    return _excluded_set(project=project, rater_id=rater_id, excluded=True)


@transaction.atomic
def rater_include(*, project: Project, rater_id: int) -> Membership:
    """Count an excluded rater's judgments again. Idempotent. Raises RaterNotFound."""
    return _excluded_set(project=project, rater_id=rater_id, excluded=False)


def rater_gold_check(*, project: Project, rater_id: int) -> Membership | None:
    """After a gold judgment: pause the rater when their gold accuracy since their last resume is
    below ``project.gold_accuracy_threshold`` after at least ``project.gold_min`` graded golds.

    Returns the membership when this call paused them, else None. One query when nothing
    happens. ``project`` needs ``gold_min`` and ``gold_accuracy_threshold``.
    """
    graded, correct = rater_gold_record(project_id=project.pk, rater_id=rater_id, since_resume=True)
    if not graded or graded < project.gold_min or correct / graded >= project.gold_accuracy_threshold:
        return None
    reason = gold_pause_reason(graded=graded, correct=correct, threshold=project.gold_accuracy_threshold)
    try:
        with transaction.atomic():
            membership, paused = _pause(project=project, rater_id=rater_id, reason=reason, automatic=True)
    except RaterNotFound:  # left the project (or became a manager) meanwhile
        return None
    return membership if paused else None
