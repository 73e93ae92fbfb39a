"""Labels per pair and question, streamed: the database counts the votes, numpy labels each batch.

Majority labels need only each pair's vote counts, so the judgments never come to Python: one
statement groups them by pair — ``COUNT(*) FILTER (WHERE answers->>'key' = 'a')`` and so on, per
question (only the answer texts are read, never whole JSON objects) — joins the pairs to export
and sends the rows in pair id order; :func:`batch_label_rows` turns each Arrow batch of it into label
rows (pair, then rubric order), as ``analysis.pair_labels`` defines them: majority with exact
splits undecided, vote counts, agreement (share of agreeing rater pairs), unanimity. Memory is
one batch, whatever the number of judgments.

Dawid–Skene weighs each rater by a confusion matrix fitted on every judgment, so it needs the
whole question at once: :func:`dawid_skene_tables` reads the judgments once as compact arrays
sorted by pair (pair offsets, int16/int32 rater codes, one int8 answer per question: about
3 bytes a judgment with one question, 8 with six), fits ``analysis.dawid_skene`` per question
and keeps only the fitted model (priors and confusion matrices). Each batch recomputes its pairs'
posteriors from their judgments (``analysis.dawid_skene_posteriors``: the fit's numbers, bit for
bit), so the exports never hold a posterior per pair and question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connections
from django.db.models import Count, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from annotation.exports.arrow_source import query_batches, select_columns

ANSWERS = ("a", "tie", "b")
#: Answer text -> category (the order of ``ANSWERS``); anything else is no answer.
_ANSWER_CODE = {answer: code for code, answer in enumerate(ANSWERS)}
UNDECIDED = -1
JUDGMENTS_COLUMN = "n_judgments"


def vote_columns(n_questions: int) -> list[str]:
    """Names of the vote count columns: per question, a / tie / b."""
    return [f"v{q}_{answer}" for q in range(n_questions) for answer in ANSWERS]


def vote_counts(*, judgments: QuerySet, questions: Sequence[str]) -> QuerySet:
    """Per judged pair of ``judgments``: ``pair_id``, ``n_judgments`` and the votes of each question.

    One row per pair (``GROUP BY pair_id``), unordered. A judgment without an answer to a question
    adds no vote to it.
    """
    counts: dict[str, Any] = {JUDGMENTS_COLUMN: Count("id")}
    for index, key in enumerate(questions):
        for answer in ANSWERS:
            # A plain text comparison: a lookup on the key transform would compare JSON values,
            # which SQLite spells JSON_EXTRACT('a', '$') and rejects as malformed.
            answered = Exact(KeyTextTransform(key, "answers"), Value(answer))
            counts[f"v{index}_{answer}"] = Count("id", filter=answered)
    return judgments.order_by().values("pair_id").annotate(**counts)


def counted_pairs_sql(*, pairs: QuerySet, counts: QuerySet) -> tuple[str, list[Any]]:
    """One SELECT: the columns of ``pairs`` (built with ``select_columns``, the pair id first), then
    those of ``counts`` but its ``pair_id``; only pairs with judgments, in pair id order.

    Both querysets are compiled by Django (parameters stay parameters); only the join is written
    here, because the ORM cannot join a table to an aggregate.
    """
    quote = connections[pairs.db].ops.quote_name
    pair_columns = list(pairs.query.annotation_select)
    count_columns = [JUDGMENTS_COLUMN, *(name for name in counts.query.annotation_select if name != JUDGMENTS_COLUMN)]
    pairs_sql, pairs_params = pairs.order_by().query.sql_with_params()
    counts_sql, counts_params = counts.query.sql_with_params()
    key = quote(pair_columns[0])
    select = ", ".join([f"p.{quote(c)}" for c in pair_columns] + [f"c.{quote(c)}" for c in count_columns])
    sql = (
        f"SELECT {select} FROM ({pairs_sql}) p INNER JOIN ({counts_sql}) c ON c.{quote('pair_id')} = p.{key} "
        f"ORDER BY p.{key}"
    )
    return sql, [*pairs_params, *counts_params]


def counts_schema(pairs_schema: pa.Schema, n_questions: int) -> pa.Schema:
    """The schema of :func:`counted_pairs_sql`'s rows."""
    counts = [pa.field(JUDGMENTS_COLUMN, pa.int64())] + [pa.field(n, pa.int64()) for n in vote_columns(n_questions)]
    return pa.schema([*pairs_schema, *counts])


@dataclass(frozen=True)
class DawidSkeneJudgments:
    """The judgments Dawid–Skene is fitted on, every question, sorted by pair (stably: a pair's
    judgments keep the order they were read in).

    ``pair_ids`` are the items (ascending); the judgments of item ``i`` are the positions
    ``offsets[i]:offsets[i + 1]`` of ``rater`` (codes) and of each question's ``answers``
    (int8 category, −1: no answer).
    """

    pair_ids: np.ndarray
    offsets: np.ndarray
    rater: np.ndarray
    n_raters: int
    answers: list[np.ndarray]


@dataclass(frozen=True)
class DawidSkeneTable:
    """One question's Dawid–Skene fit (``priors`` and ``confusions`` of ``analysis.dawid_skene``;
    None when the question has no answer) over ``judgments``; :meth:`lookup` gives pairs'
    labels and posteriors."""

    judgments: DawidSkeneJudgments
    question: int
    priors: np.ndarray | None
    confusions: np.ndarray | None

    def lookup(self, pair_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (int8 category, −1 undecided) and posteriors (pairs × a/tie/b) of ``pair_ids``:
        those of the fit, bit for bit. A pair without an answer to the question is undecided with
        NaN posteriors.

        Recomputed from the judgments of the pairs from the smallest to the largest of
        ``pair_ids``: cheap for a batch of consecutive pairs.
        """
        from analysis.dawid_skene import dawid_skene_posteriors  # noqa: PLC0415 - numpy only, loaded on use

        labels = np.full(pair_ids.size, UNDECIDED, dtype=np.int8)
        posteriors = np.full((pair_ids.size, len(ANSWERS)), np.nan)
        data = self.judgments
        if self.priors is None or self.confusions is None or not pair_ids.size or not data.pair_ids.size:
            return labels, posteriors
        at = np.minimum(np.searchsorted(data.pair_ids, pair_ids), data.pair_ids.size - 1)
        known = np.flatnonzero(data.pair_ids[at] == pair_ids)
        if not known.size:
            return labels, posteriors
        first, stop = int(at[known].min()), int(at[known].max()) + 1
        start, end = int(data.offsets[first]), int(data.offsets[stop])
        answer = data.answers[self.question][start:end]
        answered = answer >= 0
        # Renumber the items of the range from 0; each keeps its judgments in the fit's order.
        item = np.repeat(np.arange(stop - first, dtype=np.intp), np.diff(data.offsets[first:stop + 1]))[answered]
        post, label = dawid_skene_posteriors(item, data.rater[start:end][answered], answer[answered],
                                             priors=self.priors, confusions=self.confusions, n_items=stop - first)
        rows = at[known] - first
        judged = np.bincount(item, minlength=stop - first)[rows] > 0
        labels[known[judged]] = label[rows[judged]]
        posteriors[known[judged]] = post[rows[judged]]
        return labels, posteriors


@dataclass(frozen=True)
class LabelRows:
    """Label rows of one batch, in pair then question order (arrays of equal length).

    ``pair`` indexes the batch's rows, ``question`` the questions; ``votes`` is rows × a/tie/b;
    ``majority`` and ``label`` are categories (−1 undecided; ``label`` is Dawid–Skene's when
    it ran); ``agreement`` and ``confidence`` are NaN where undefined; ``posteriors`` only with
    Dawid–Skene.
    """

    pair: np.ndarray
    question: np.ndarray
    n: np.ndarray
    votes: np.ndarray
    majority: np.ndarray
    label: np.ndarray
    agreement: np.ndarray
    unanimous: np.ndarray
    confidence: np.ndarray
    posteriors: np.ndarray | None


def majority(votes: np.ndarray) -> np.ndarray:
    """Plurality category per row of a rows × 3 vote table; −1 without votes or on an exact split."""
    top = np.maximum(np.maximum(votes[:, 0], votes[:, 1]), votes[:, 2])
    n_top = (votes[:, 0] == top).astype(np.int8) + (votes[:, 1] == top) + (votes[:, 2] == top)
    first = np.where(votes[:, 0] == top, 0, np.where(votes[:, 1] == top, 1, 2))
    return np.where((top > 0) & (n_top == 1), first, UNDECIDED).astype(np.int8)


def agreement(votes: np.ndarray) -> np.ndarray:
    """Share of agreeing rater pairs per row; NaN below 2 votes (every term is an exact integer)."""
    c = votes.astype(float)
    m = c[:, 0] + c[:, 1] + c[:, 2]
    same = c[:, 0] * (c[:, 0] - 1.0) + c[:, 1] * (c[:, 1] - 1.0) + c[:, 2] * (c[:, 2] - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m >= 2, same / (m * (m - 1.0)), np.nan)


def batch_label_rows(
    batch: pa.RecordBatch,
    *,
    n_questions: int,
    pair_ids: np.ndarray,
    dawid_skene: Sequence[DawidSkeneTable] | None = None,
) -> LabelRows:
    """Label rows of a batch of :func:`counted_pairs_sql` (``pair_ids``: its pair id column)."""
    names = vote_columns(n_questions)
    size = batch.num_rows
    votes_all = np.empty((size, n_questions, 3), dtype=np.int64)
    for index, name in enumerate(names):
        votes_all[:, index // 3, index % 3] = batch.column(name).to_numpy(zero_copy_only=False)
    # nonzero walks row-major: pair by pair, each pair's questions in rubric order.
    pair, question = np.nonzero(votes_all.sum(axis=2) > 0)
    votes = votes_all[pair, question]
    n = votes.sum(axis=1)
    top = np.maximum(np.maximum(votes[:, 0], votes[:, 1]), votes[:, 2])
    plurality = majority(votes)
    posteriors = None
    if dawid_skene is None:
        label = plurality
        probabilities = votes / np.maximum(n, 1)[:, None].astype(float)
    else:
        label = np.full(pair.size, UNDECIDED, dtype=np.int8)
        posteriors = np.full((pair.size, 3), np.nan)
        ids = pair_ids[pair]
        for index, table in enumerate(dawid_skene):
            rows = np.flatnonzero(question == index)
            if not rows.size:
                continue
            label[rows], posteriors[rows] = table.lookup(ids[rows])
        probabilities = posteriors
    decided = label >= 0
    confidence = np.full(pair.size, np.nan)
    confidence[decided] = probabilities[np.flatnonzero(decided), label[decided]]
    return LabelRows(
        pair=pair, question=question, n=n, votes=votes, majority=plurality, label=label,
        agreement=agreement(votes), unanimous=(n >= 2) & (top == n), confidence=confidence, posteriors=posteriors,
    )


def _answer_codes(column: pa.Array) -> np.ndarray:
    """Answer texts -> int8 categories (−1: no answer), decoding each distinct text once."""
    encoded = pc.dictionary_encode(column)
    lookup = np.array([_ANSWER_CODE.get(v, -1) for v in encoded.dictionary.to_pylist()] + [-1], dtype=np.int8)
    return lookup[encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)]


def dawid_skene_tables(*, judgments: QuerySet, questions: Sequence[str]) -> list[DawidSkeneTable]:
    """Dawid–Skene per question over ``judgments`` (read in id order), as ``analysis.pair_labels``
    fits it: items are the pairs with an answer to any of ``questions`` (ascending ids).

    Holds the judgments as :class:`DawidSkeneJudgments` (shared by the tables) and, while a
    question is fitted, the fit's working arrays (about 60 bytes a judgment); posteriors are
    recomputed batch by batch (:meth:`DawidSkeneTable.lookup`).
    """
    from analysis.dawid_skene import dawid_skene  # noqa: PLC0415 - numpy only, loaded on use

    columns: dict[str, Any] = {"pair_id": "pair_id", "rater": "rater_id"}
    fields = [pa.field("pair_id", pa.int64()), pa.field("rater", pa.int64())]
    for index, key in enumerate(questions):
        columns[f"q{index}"] = KeyTextTransform(key, "answers")
        fields.append(pa.field(f"q{index}", pa.string()))
    schema = pa.schema(fields)
    pair_parts: list[np.ndarray] = []
    rater_parts: list[np.ndarray] = []
    rater_ids: set[int] = set()
    answer_parts: list[list[np.ndarray]] = [[] for _ in questions]
    for batch in query_batches(select_columns(judgments.order_by("id"), columns), schema):
        answers = [_answer_codes(batch.column(f"q{index}")) for index in range(len(questions))]
        answered = np.logical_or.reduce([a >= 0 for a in answers]) if answers else np.zeros(batch.num_rows, bool)
        pair_parts.append(batch.column("pair_id").to_numpy()[answered])
        rater_parts.append(batch.column("rater").to_numpy()[answered])
        rater_ids.update(np.unique(rater_parts[-1]).tolist())
        for index, codes in enumerate(answers):
            answer_parts[index].append(codes[answered])
    raters = np.array(sorted(rater_ids), dtype=np.int64)
    # Rater codes are a few hundred at most in practice: int16 halves what the export keeps.
    rater_type = np.int16 if raters.size <= np.iinfo(np.int16).max else np.int32
    for index, part in enumerate(rater_parts):  # coded part by part: no second full-length int64 array
        rater_parts[index] = np.searchsorted(raters, part).astype(rater_type)
    pair = np.concatenate(pair_parts) if pair_parts else np.empty(0, np.int64)
    del pair_parts
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    starts = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1]))) if pair.size else np.empty(0, np.intp)
    pair_ids = pair[starts]
    del pair
    offsets = np.append(starts, order.size).astype(np.int64)
    rater = (np.concatenate(rater_parts) if rater_parts else np.empty(0, rater_type))[order]
    del rater_parts
    answers = []
    for parts in answer_parts:
        answers.append((np.concatenate(parts) if parts else np.empty(0, np.int8))[order])
        parts.clear()
    del order
    data = DawidSkeneJudgments(pair_ids=pair_ids, offsets=offsets, rater=rater, n_raters=int(raters.size),
                               answers=answers)
    tables = []
    for index in range(len(questions)):
        answered = answers[index] >= 0
        if not answered.any():
            tables.append(DawidSkeneTable(data, index, None, None))
            continue
        item = np.repeat(np.arange(pair_ids.size, dtype=np.intp), np.diff(offsets))[answered]
        result = dawid_skene(item, rater[answered], answers[index][answered], n_items=pair_ids.size,
                             n_raters=data.n_raters)
        tables.append(DawidSkeneTable(data, index, result.priors, result.confusions))
        del item, result
    return tables
