"""Quality control reads: the rules that flag judgments and raters, gold grading, and the per-rater
report that managers act on (page and ``GET /api/v1/projects/{id}/raters/``).

Every threshold is a named constant here, in one place:

Per judgment (stored in ``Judgment.flags`` when a rater submits; see ``judgment_flags``):

- ``too_fast``: submitted sooner than the project's ``too_fast_seconds`` after first display.
- ``not_watched``: either video played for less than :data:`NOT_WATCHED_FRACTION` of its
  duration minus :data:`NOT_WATCHED_SLACK_SECONDS` (the page counts steady playback from
  ``timeupdate`` events, which fire every ~0.25 s, so up to ~0.25 s × playback rate is lost at
  each end of a complete viewing). No watch data or no known duration: not flagged (imported
  judgments and API clients that do not report watch time are never flagged on no evidence).

Gold grading (:func:`gold_judgment_correct`), **per judgment**: a gold judgment is *graded* when
the rater answered at least one question the gold pair defines, and *correct* when every such
answer is among that question's accepted answers. Gold accuracy = correct / graded gold
judgments. (Per judgment rather than per answer so that "gold_min golds" and "2/6 correct" count
the same thing; managers mark only the questions whose answer is beyond doubt, and may accept a
tie.) The automatic pause (``annotation.services.quality.rater_gold_check``) counts only gold
judgments made after the rater's last resume.

Per rater (flags of :func:`project_rater_report`):

- ``side_bias``: P(left) differs from 0.5, exact two-sided binomial test p < :data:`SIDE_BIAS_P_VALUE`,
  over at least :data:`SIDE_BIAS_MIN_JUDGMENTS` judgments with a side. A judgment's side is the
  side most of its decisive answers chose (left/right as shown; ties, splits and imported
  judgments without sides are left out), so one judgment counts once, not once per question.
- ``straightlining``: one answer as the rater pressed it (left, right or tie; a/b for judgments
  without sides) on at least :data:`STRAIGHTLINING_SHARE` of all their answers, over at least
  :data:`STRAIGHTLINING_MIN_JUDGMENTS` judgments; ``straightlining_answer`` says which.
- ``low_agreement``: leave-one-out agreement (share of answers equal to the other raters' strict
  majority on the same pair and question, ``analysis.agreement.rater_agreement``) at least
  :data:`LOW_AGREEMENT_MARGIN` below the project's, and significantly so (one-sided binomial
  p < :data:`LOW_AGREEMENT_P_VALUE` against the project's rate), over at least
  :data:`LOW_AGREEMENT_MIN_COMPARISONS` answers with a decided majority.
- ``too_fast``: at least :data:`TOO_FAST_SHARE` of the rater's judgments flagged ``too_fast``,
  over at least :data:`TOO_FAST_MIN_JUDGMENTS` judgments.
- ``gold_below_threshold``: gold accuracy (all their gold judgments) below the project's
  ``gold_accuracy_threshold`` after at least ``gold_min`` graded gold judgments.

Agreement and bias use every judgment of the project, excluded raters' included, so a rater's
figures do not move when a manager excludes or includes someone else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db.models import F, Q, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from annotation.exports.arrow_source import query_batches, select_columns
from annotation.models import Judgment, Membership, Pair, Project, Question
from annotation.selectors.assignments import project_raters

# --- judgment flags -------------------------------------------------------------------------

JUDGMENT_FLAG_TOO_FAST = "too_fast"
JUDGMENT_FLAG_NOT_WATCHED = "not_watched"
#: A video counts as watched from this share of its duration, less the slack below.
NOT_WATCHED_FRACTION = 0.9
NOT_WATCHED_SLACK_SECONDS = 0.5

# --- rater flags ----------------------------------------------------------------------------

RATER_FLAG_SIDE_BIAS = "side_bias"
RATER_FLAG_STRAIGHTLINING = "straightlining"
RATER_FLAG_LOW_AGREEMENT = "low_agreement"
RATER_FLAG_TOO_FAST = "too_fast"
RATER_FLAG_GOLD_BELOW_THRESHOLD = "gold_below_threshold"

SIDE_BIAS_P_VALUE = 0.01
SIDE_BIAS_MIN_JUDGMENTS = 20
STRAIGHTLINING_SHARE = 0.9
STRAIGHTLINING_MIN_JUDGMENTS = 20
LOW_AGREEMENT_MARGIN = 0.15
LOW_AGREEMENT_P_VALUE = 0.01
LOW_AGREEMENT_MIN_COMPARISONS = 20
TOO_FAST_SHARE = 0.2
TOO_FAST_MIN_JUDGMENTS = 10

_ANSWER_CODE = {"a": 0, "tie": 1, "b": 2}  # analysis.coding's categories
# Answers as the rater pressed them: sides when known, canonical a/b for judgments without sides.
_PRESSED = ("left", "tie", "right", "a", "b")


def _watched_enough(watched: float | None, duration: float | None) -> bool:
    if watched is None or duration is None or duration <= 0:
        return True  # no evidence either way
    return watched >= NOT_WATCHED_FRACTION * duration - NOT_WATCHED_SLACK_SECONDS


def judgment_flags(
    *,
    duration_ms: int | None,
    too_fast_seconds: float,
    watch_a_seconds: float | None,
    watch_b_seconds: float | None,
    video_a_duration: float | None,
    video_b_duration: float | None,
) -> list[str]:
    """The attention flags of one submitted judgment, sorted (see the module docstring)."""
    flags = []
    if not (_watched_enough(watch_a_seconds, video_a_duration) and _watched_enough(watch_b_seconds, video_b_duration)):
        flags.append(JUDGMENT_FLAG_NOT_WATCHED)
    if duration_ms is not None and duration_ms < too_fast_seconds * 1000:
        flags.append(JUDGMENT_FLAG_TOO_FAST)
    return flags


# --- gold grading ---------------------------------------------------------------------------


def _accepted(value: Any) -> list[str]:
    # Stored as {key: [accepted]}; a bare string (older rows) means one accepted answer.
    if isinstance(value, str):
        return [value]
    return [v for v in value or [] if isinstance(v, str)]


def gold_judgment_correct(*, answers: Mapping[str, str], gold_answers: Mapping[str, Any]) -> bool | None:
    """Grade one judgment of a gold pair (canonical answers): True, False, or None when none of
    the questions the gold pair defines was answered (not graded)."""
    graded = False
    for key, accepted in (gold_answers or {}).items():
        answer = answers.get(key)
        if answer is None or answer == "":
            continue
        graded = True
        if answer not in _accepted(accepted):
            return False
    return True if graded else None


def rater_gold_record(*, project_id: int, rater_id: int, since_resume: bool = False) -> tuple[int, int]:
    """(graded, correct) gold judgments of the rater in the project (one query).

    With ``since_resume`` only those made after the rater's last resume (``Membership.resumed_at``)
    count: what the automatic pause looks at. A rater's gold judgments are few (``gold_rate`` of theirs).
    """
    qs = Judgment.objects.filter(project_id=project_id, rater_id=rater_id, pair__is_gold=True)
    if since_resume:
        resumed = Membership.objects.filter(project_id=project_id, user_id=rater_id).values("resumed_at")[:1]
        qs = qs.annotate(resumed=Subquery(resumed)).filter(Q(resumed__isnull=True) | Q(created_at__gt=F("resumed")))
    graded = correct = 0
    for answers, gold_answers in qs.values_list("answers", "pair__gold_answers"):
        outcome = gold_judgment_correct(answers=answers or {}, gold_answers=gold_answers or {})
        if outcome is not None:
            graded += 1
            correct += outcome
    return graded, correct


def gold_pause_reason(*, graded: int, correct: int, threshold: float) -> str:
    """The reason a manager reads when gold accuracy paused a rater."""
    return (
        f"gold accuracy {correct}/{graded} = {round(100 * correct / graded)} % below "
        f"{round(100 * threshold)} % after {graded} golds"
    )


# --- the report -----------------------------------------------------------------------------


def _code_strings(column: pa.Array, decode: Callable[[str], Any]) -> tuple[list[Any], np.ndarray]:
    """``decode`` of each distinct value of a string column, and each row's index into them (-1: null)."""
    encoded = pc.dictionary_encode(column)
    values = [decode(v) for v in encoded.dictionary.to_pylist()]
    return values, encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)


def _flag_codes(flags_text: str | None) -> tuple[bool, bool, bool]:
    flags = json.loads(flags_text) if flags_text and flags_text not in ("[]", "") else []
    return bool(flags), JUDGMENT_FLAG_TOO_FAST in flags, JUDGMENT_FLAG_NOT_WATCHED in flags


def _judgment_arrays(*, project_id: int, keys: list[str]) -> dict[str, np.ndarray]:
    """The project's judgments as parallel arrays, from one query read as Arrow batches."""
    columns: dict[str, Any] = {
        "rater": "rater_id",
        "pair": "pair_id",
        "left_is_a": "left_is_a",
        "duration_ms": "duration_ms",
        "flags": Cast("flags", TextField()),
    }
    fields = [pa.field("rater", pa.int64()), pa.field("pair", pa.int64()), pa.field("left_is_a", pa.bool_()),
              pa.field("duration_ms", pa.int64()), pa.field("flags", pa.string())]
    for index, key in enumerate(keys):
        columns[f"q{index}"] = KeyTextTransform(key, "answers")
        fields.append(pa.field(f"q{index}", pa.string()))
    qs = select_columns(Judgment.objects.filter(project_id=project_id).order_by(), columns)
    chunks: list[dict[str, np.ndarray]] = []
    for batch in query_batches(qs, pa.schema(fields)):
        left = batch.column("left_is_a")
        chunk = {
            "rater": batch.column("rater").to_numpy(),
            "pair": batch.column("pair").to_numpy(),
            "left": np.where(left.is_null().to_numpy(zero_copy_only=False), -1,
                             left.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int8)).astype(np.int8),
            "duration_ms": batch.column("duration_ms").fill_null(-1).to_numpy(zero_copy_only=False),
        }
        decoded, codes = _code_strings(batch.column("flags"), _flag_codes)
        table = np.array([*decoded, (False, False, False)], dtype=bool).reshape(-1, 3)
        chunk["flagged"], chunk["too_fast"], chunk["not_watched"] = (table[codes, i] for i in range(3))
        for index in range(len(keys)):
            decoded, codes = _code_strings(batch.column(f"q{index}"), lambda v: _ANSWER_CODE.get(v, -1))
            chunk[f"q{index}"] = np.array([*decoded, -1], dtype=np.int8)[codes]
        chunks.append(chunk)
    names = ["rater", "pair", "left", "duration_ms", "flagged", "too_fast", "not_watched",
             *(f"q{i}" for i in range(len(keys)))]
    empty = {"left": np.int8, "flagged": bool, "too_fast": bool, "not_watched": bool}
    return {
        name: np.concatenate([c[name] for c in chunks]) if chunks
        else np.empty(0, empty.get(name, np.int8 if name.startswith("q") else np.int64))
        for name in names
    }


def _gold_outcomes(pair: np.ndarray, answers: list[np.ndarray], keys: list[str],
                   gold: dict[int, dict]) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: graded (bool) and correct (bool), vectorised :func:`gold_judgment_correct`."""
    graded = np.zeros(pair.size, dtype=bool)
    wrong = np.zeros(pair.size, dtype=bool)
    if not gold or not pair.size:
        return graded, wrong
    gold_ids = np.array(sorted(gold), dtype=np.int64)
    rows = np.flatnonzero(np.isin(pair, gold_ids))
    position = np.searchsorted(gold_ids, pair[rows])
    for k, key in enumerate(keys):
        defined = np.zeros(gold_ids.size, dtype=bool)
        accept = np.zeros((gold_ids.size, 3), dtype=bool)
        for g, pair_id in enumerate(gold_ids.tolist()):
            if key in gold[pair_id]:
                defined[g] = True
                for answer in _accepted(gold[pair_id][key]):
                    if answer in _ANSWER_CODE:
                        accept[g, _ANSWER_CODE[answer]] = True
        answer = answers[k][rows]
        here = defined[position] & (answer >= 0)
        graded[rows] |= here
        wrong[rows] |= here & ~accept[position, np.maximum(answer, 0)]
    return graded, graded & ~wrong


def _pressed(answer: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Index into :data:`_PRESSED` of each answer (-1 where unanswered)."""
    side = np.where((answer == 0) == (left == 1), 0, 2)
    pressed = np.where(answer == 1, 1, np.where(left < 0, np.where(answer == 0, 3, 4), side))
    return np.where(answer < 0, -1, pressed)


def _none_if_nan(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def project_rater_report(*, project: Project) -> list[dict[str, Any]]:
    """One dict per rater of ``project`` (by username), with the figures and flags of the module
    docstring: ``rater_id``, ``username``, ``external_id``, ``judgments``, ``gold_judged``,
    ``gold_correct``, ``gold_accuracy`` (None without graded golds), ``median_seconds`` (None
    without durations), ``too_fast_judgments``, ``not_watched_judgments``, ``flagged_judgments``
    (judgments with any flag), ``p_left``, ``p_left_p_value``, ``side_judgments`` (None / 0
    without sided judgments), ``loo_agreement``, ``loo_comparisons``, ``flags`` (codes),
    ``straightlining_answer``, ``paused``, ``paused_reason``, ``paused_at``, ``resumed_at``,
    ``excluded``.

    ``project`` needs ``gold_min`` and ``gold_accuracy_threshold``. Four queries whatever the
    size (raters, questions, gold pairs, judgments read as Arrow batches); the rest is numpy.
    """
    # Imported here, not at module level: the judgment submit path imports this module for its
    # flags, and web processes should not load scipy and the analysis package until a report.
    from scipy import stats  # noqa: PLC0415

    from analysis.agreement import rater_agreement  # noqa: PLC0415
    from analysis.bias import binomial_test_half  # noqa: PLC0415
    from analysis.coding import QuestionData, pair_table  # noqa: PLC0415

    members = list(
        Membership.objects.filter(project_id=project.pk, role=Membership.ROLE_RATER)
        .select_related("user")
        .order_by("user__username", "user_id")
    )
    keys = list(Question.objects.filter(project_id=project.pk).values_list("key", flat=True))
    gold = dict(Pair.objects.filter(project_id=project.pk, is_gold=True).values_list("id", "gold_answers"))
    data = _judgment_arrays(project_id=project.pk, keys=keys)
    answers = [data[f"q{i}"] for i in range(len(keys))]

    rater_ids, r = np.unique(data["rater"], return_inverse=True)
    pair_ids, p = np.unique(data["pair"], return_inverse=True)
    n_r = rater_ids.size
    left = data["left"]

    def per_rater(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(r, weights=weights, minlength=n_r)

    judged = per_rater()
    flagged, too_fast, not_watched = (per_rater(data[k]) for k in ("flagged", "too_fast", "not_watched"))
    has_duration = data["duration_ms"] >= 0
    medians = (
        pd.Series(data["duration_ms"][has_duration] / 1000.0).groupby(r[has_duration]).median()
        if has_duration.any() else pd.Series(dtype=float)
    )
    graded, correct = _gold_outcomes(data["pair"], answers, keys, gold)
    gold_judged, gold_correct = per_rater(graded), per_rater(correct)

    # Leave-one-out agreement per question with analysis' own routine, summed over questions;
    # side and pressed-answer counts along the way.
    agree, decided = np.zeros(n_r), np.zeros(n_r)
    left_votes = np.zeros(r.size, dtype=np.int32)
    right_votes = np.zeros(r.size, dtype=np.int32)
    pressed_counts = np.zeros(n_r * len(_PRESSED), dtype=np.int64)
    for key, answer in zip(keys, answers, strict=True):
        rows = np.flatnonzero(answer >= 0)
        if rows.size:
            q = QuestionData(key, p[rows].astype(np.int32), r[rows].astype(np.int32), answer[rows], left[rows],
                             np.full(rows.size, -1, np.int8))
            figures = rater_agreement(q, pair_table(q, pair_ids.size).full, n_r)
            agree += figures["majority_agree"]
            decided += figures["n_majority"]
        decisive = (answer != 1) & (answer >= 0) & (left >= 0)
        chose_left = (answer == 0) == (left == 1)
        left_votes += decisive & chose_left
        right_votes += decisive & ~chose_left
        pressed_counts += np.bincount(r[rows] * len(_PRESSED) + _pressed(answer[rows], left[rows]),
                                      minlength=n_r * len(_PRESSED))
    side_left = per_rater(left_votes > right_votes)
    side_n = per_rater(left_votes != right_votes)
    p_values = np.full(n_r, np.nan)
    sided = side_n > 0
    if sided.any():
        p_values[sided] = binomial_test_half(side_left[sided], side_n[sided])[0]
    project_loo = agree.sum() / decided.sum() if decided.sum() else np.nan
    low_p = np.ones(n_r)
    if not np.isnan(project_loo):
        low_p = stats.binom.cdf(agree, decided, project_loo)
    pressed_counts = pressed_counts.reshape(n_r, len(_PRESSED))
    answers_total = pressed_counts.sum(axis=1)
    top = pressed_counts.argmax(axis=1) if n_r else np.empty(0, np.int64)
    top_share = np.divide(pressed_counts.max(axis=1) if n_r else np.empty(0), answers_total,
                          out=np.zeros(n_r), where=answers_total > 0)

    index = {int(rid): i for i, rid in enumerate(rater_ids.tolist())}
    report = []
    for membership in members:
        i = index.get(membership.user_id)
        row: dict[str, Any] = {
            "rater_id": membership.user_id,
            "username": membership.user.username,
            "external_id": membership.external_id,
            "judgments": 0, "gold_judged": 0, "gold_correct": 0, "gold_accuracy": None, "median_seconds": None,
            "too_fast_judgments": 0, "not_watched_judgments": 0, "flagged_judgments": 0,
            "p_left": None, "p_left_p_value": None, "side_judgments": 0,
            "loo_agreement": None, "loo_comparisons": 0, "flags": [], "straightlining_answer": None,
            "paused": membership.paused, "paused_reason": membership.paused_reason,
            "paused_at": membership.paused_at, "resumed_at": membership.resumed_at, "excluded": membership.excluded,
        }
        if i is not None:
            n = int(judged[i])
            row.update(
                judgments=n,
                gold_judged=int(gold_judged[i]),
                gold_correct=int(gold_correct[i]),
                gold_accuracy=float(gold_correct[i] / gold_judged[i]) if gold_judged[i] else None,
                median_seconds=_none_if_nan(float(medians[i])) if i in medians.index else None,
                too_fast_judgments=int(too_fast[i]),
                not_watched_judgments=int(not_watched[i]),
                flagged_judgments=int(flagged[i]),
                p_left=float(side_left[i] / side_n[i]) if side_n[i] else None,
                p_left_p_value=_none_if_nan(float(p_values[i])),
                side_judgments=int(side_n[i]),
                loo_agreement=float(agree[i] / decided[i]) if decided[i] else None,
                loo_comparisons=int(decided[i]),
            )
            flags = []
            if side_n[i] >= SIDE_BIAS_MIN_JUDGMENTS and p_values[i] < SIDE_BIAS_P_VALUE:
                flags.append(RATER_FLAG_SIDE_BIAS)
            if n >= STRAIGHTLINING_MIN_JUDGMENTS and top_share[i] >= STRAIGHTLINING_SHARE:
                flags.append(RATER_FLAG_STRAIGHTLINING)
                row["straightlining_answer"] = _PRESSED[int(top[i])]
            if (decided[i] >= LOW_AGREEMENT_MIN_COMPARISONS
                    and agree[i] / decided[i] <= project_loo - LOW_AGREEMENT_MARGIN
                    and low_p[i] < LOW_AGREEMENT_P_VALUE):
                flags.append(RATER_FLAG_LOW_AGREEMENT)
            if n >= TOO_FAST_MIN_JUDGMENTS and too_fast[i] >= TOO_FAST_SHARE * n:
                flags.append(RATER_FLAG_TOO_FAST)
            if (gold_judged[i] and gold_judged[i] >= project.gold_min
                    and gold_correct[i] / gold_judged[i] < project.gold_accuracy_threshold):
                flags.append(RATER_FLAG_GOLD_BELOW_THRESHOLD)
            row["flags"] = flags
        report.append(row)
    return report


def project_rater_list(*, project: Project) -> list[dict[str, Any]]:
    """``project_rater_report``'s rows (same order) with ``id`` and the assignment counts of
    ``project_raters`` merged in: ``judged``, ``skipped``, ``has_lease``, ``last_active``
    (0 / False / None for a rater without assignments)."""
    counts = {row["id"]: row for row in project_raters(project=project)}
    rows = []
    for row in project_rater_report(project=project):
        base = counts.get(row["rater_id"], {})
        rows.append({
            "id": row["rater_id"],
            "judged": base.get("judged", 0),
            "skipped": base.get("skipped", 0),
            "has_lease": base.get("has_lease", False),
            "last_active": base.get("last_active"),
            **row,
        })
    return rows
