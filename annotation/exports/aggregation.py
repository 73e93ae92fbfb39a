"""Labels per pair and question, streamed: the database counts the votes, numpy labels each batch.

Majority labels need only each pair's vote counts, so the judgments never come to Python: one
statement groups them by pair — ``COUNT(*) FILTER (WHERE answers->>'key' = 'a')`` and so on, per
question (only the answer texts are read, never whole JSON objects) — joins the pairs to export
and sends the rows in pair id order; :func:`batch_label_rows` turns each Arrow batch of it into label
rows (pair, then rubric order), as ``analysis.pair_labels`` defines them: majority with exact
splits undecided, vote counts, agreement (share of agreeing rater pairs), unanimity. Memory is
one batch, whatever the number of judgments.

Dawid–Skene weighs each rater by a confusion matrix fitted on every judgment, so it needs the
whole question at once: :func:`dawid_skene_tables` reads the judgments once (the database
turns each answer into a digit), keeps them as compact arrays sorted by pair (pair offsets,
int16 rater codes, answers packed 2 bits each: about 2.5 bytes a judgment plus a quarter a
question), fits ``analysis.dawid_skene`` per question and keeps only the fitted model (priors and
confusion matrices). Each batch recomputes its pairs' posteriors from their judgments
(``analysis.dawid_skene_posteriors``: the fit's numbers, bit for bit), so the exports never hold
a posterior per pair and question.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from django.db import connections
from django.db.models import Case, Count, IntegerField, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from annotation.exports.arrow_source import query_batches, select_columns

ANSWERS = ("a", "tie", "b")
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


def _pack_answers(codes: np.ndarray) -> np.ndarray:
    """Answer categories (−1..2) packed four to a byte (2 bits each)."""
    padded = np.zeros(-(-codes.size // 4) * 4, dtype=np.uint8)
    padded[:codes.size] = codes + 1
    quads = padded.reshape(-1, 4)
    return quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)


def _unpack_answers(packed: np.ndarray, start: int, end: int) -> np.ndarray:
    """Answer categories ``start:end`` (int8, −1: no answer) of :func:`_pack_answers`'s bytes."""
    quads = packed[start // 4:-(-end // 4)]
    codes = np.empty((quads.size, 4), dtype=np.int8)
    for shift in range(4):
        codes[:, shift] = (quads >> (2 * shift)) & 3
    codes -= 1
    return codes.ravel()[start % 4:start % 4 + end - start]


@dataclass(frozen=True)
class DawidSkeneJudgments:
    """The judgments Dawid–Skene is fitted on, every question, sorted by pair (stably: a pair's
    judgments keep the order they were read in), held while the export streams: about 2.5 bytes
    a judgment plus a quarter a question, 12 a pair.

    ``pair_ids`` are the items (ascending); the judgments of item ``i`` are the positions
    ``offsets[i]:offsets[i + 1]`` of ``rater`` (codes) and of each question's ``answers``
    (:meth:`answer`).
    """

    pair_ids: np.ndarray
    offsets: np.ndarray
    rater: np.ndarray
    n_raters: int
    packed_answers: list[np.ndarray]

    def answer(self, question: int, start: int = 0, end: int | None = None) -> np.ndarray:
        """The answers (int8 category, −1: none) to a question of judgments ``start:end``."""
        return _unpack_answers(self.packed_answers[question], start, self.rater.size if end is None else end)


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
        answer = data.answer(self.question, start, end)
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


def _answer_code(key: str) -> Case:
    """SQL: the answer to question ``key`` of a judgment as a category (0 a, 1 tie, 2 b), NULL
    without one: the database sends one digit instead of the text."""
    text = KeyTextTransform(key, "answers")
    return Case(*(When(Exact(text, Value(answer)), then=Value(code)) for code, answer in enumerate(ANSWERS)),
                default=Value(None), output_field=IntegerField())


def _release_freed_memory() -> None:
    """Hand the memory freed by reading and fitting back to the operating system.

    The allocators keep it for reuse (glibc's heaps, Arrow's pool), but the streaming that follows
    allocates other sizes from other threads and mostly does not reuse it: measured on a million
    judgments, releasing lowers the export's peak by about 10 MB. glibc only; elsewhere Arrow's
    pool alone.
    """
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (no libc.so.6 or no malloc_trim): nothing to trim
        pass


def dawid_skene_tables(*, judgments: QuerySet, questions: Sequence[str]) -> list[DawidSkeneTable]:
    """Dawid–Skene per question over ``judgments``, as ``analysis.pair_labels`` fits it: items are
    the pairs with an answer to any of ``questions`` (ascending ids).

    Reads the judgments once, in pair then id order, into :class:`DawidSkeneJudgments` (shared by
    the tables) and fits one question at a time; posteriors are recomputed batch by batch
    (:meth:`DawidSkeneTable.lookup`). Memory: :class:`DawidSkeneJudgments`, and while a question is
    fitted about 12 bytes a judgment and 30 a pair more.
    """
    from analysis.dawid_skene import dawid_skene  # noqa: PLC0415 - numpy only, loaded on use

    columns: dict[str, Any] = {"pair_id": "pair_id", "rater": "rater_id"}
    fields = [pa.field("pair_id", pa.int64()), pa.field("rater", pa.int64())]
    for index, key in enumerate(questions):
        columns[f"q{index}"] = _answer_code(key)
        fields.append(pa.field(f"q{index}", pa.int8()))
    schema = pa.schema(fields)
    # Per batch: its pairs and their numbers of judgments (the rows come in pair order, so a pair
    # is one run, maybe cut by a batch boundary), its raters and their codes, the answers.
    pair_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    rater_parts: list[tuple[np.ndarray, np.ndarray]] = []
    answer_parts: list[list[np.ndarray]] = [[] for _ in questions]
    for batch in query_batches(select_columns(judgments.order_by("pair_id", "id"), columns), schema):
        answers = [batch.column(f"q{index}").fill_null(-1).to_numpy() for index in range(len(questions))]
        answered = np.logical_or.reduce([a >= 0 for a in answers]) if answers else np.zeros(batch.num_rows, bool)
        pair = batch.column("pair_id").to_numpy()[answered]
        if not pair.size:
            continue
        starts = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1])))
        pair_parts.append(pair[starts])
        count_parts.append(np.diff(np.append(starts, pair.size)))
        rater_ids, rater_codes = np.unique(batch.column("rater").to_numpy()[answered], return_inverse=True)
        small = rater_ids.size <= np.iinfo(np.int16).max
        rater_parts.append((rater_ids, rater_codes.astype(np.int16 if small else np.int32)))
        for index, codes in enumerate(answers):
            answer_parts[index].append(codes[answered])
    pair = np.concatenate(pair_parts) if pair_parts else np.empty(0, np.int64)
    if pair.size > 1 and bool((pair[1:] < pair[:-1]).any()):  # pragma: no cover - the query orders them
        raise RuntimeError("Dawid–Skene: the judgments did not come in pair order")
    new_pair = np.concatenate(([True], pair[1:] != pair[:-1])) if pair.size else np.empty(0, bool)
    pair_ids = pair[new_pair]
    counts = np.add.reduceat(np.concatenate(count_parts), np.flatnonzero(new_pair)) if pair.size else pair
    n_judgments = int(counts.sum())
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32 if n_judgments < 2**31 else np.int64)
    del pair, new_pair, counts, pair_parts, count_parts
    raters = np.unique(np.concatenate([ids for ids, _ in rater_parts])) if rater_parts else np.empty(0, np.int64)
    # Rater codes are a few hundred at most in practice: int16 halves what the export keeps.
    rater_type = np.int16 if raters.size <= np.iinfo(np.int16).max else np.int32
    rater = np.concatenate([np.searchsorted(raters, ids).astype(rater_type)[codes] for ids, codes in rater_parts]
                           or [np.empty(0, rater_type)])
    del rater_parts
    packed = []
    for parts in answer_parts:
        packed.append(_pack_answers(np.concatenate(parts) if parts else np.empty(0, np.int8)))
        parts.clear()
    data = DawidSkeneJudgments(pair_ids=pair_ids, offsets=offsets, rater=rater, n_raters=int(raters.size),
                               packed_answers=packed)
    item_type = np.int32 if pair_ids.size <= np.iinfo(np.int32).max else np.int64
    tables = []
    for index in range(len(questions)):
        answer = data.answer(index)
        answered = answer >= 0
        if not answered.any():
            tables.append(DawidSkeneTable(data, index, None, None))
            continue
        item = np.repeat(np.arange(pair_ids.size, dtype=item_type), np.diff(offsets))[answered]
        result = dawid_skene(item, rater[answered], answer[answered], n_items=pair_ids.size, n_raters=data.n_raters)
        tables.append(DawidSkeneTable(data, index, result.priors, result.confusions))
        del item, result, answer, answered
    _release_freed_memory()
    return tables
