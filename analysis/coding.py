"""Turn a judgments DataFrame into compact integer arrays, one block per question.

Every other module works on the arrays produced here, so the (slow) string handling happens
once. Answers are coded as categories ``0 = "a"``, ``1 = "tie"``, ``2 = "b"``; the ordinal code
of STATS.md (A = −1, tie = 0, B = +1) is ``category − 1``, so category order is the ordinal order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

A, TIE, B = 0, 1, 2
ANSWER_LABELS: tuple[str, str, str] = ("a", "tie", "b")
ORDINAL_CODES = np.array([-1, 0, 1], dtype=np.int8)
REQUIRED_COLUMNS = ("pair_id", "rater", "generator_a", "generator_b", "question", "answer")

_ANSWER_INDEX = {"a": A, "tie": TIE, "b": B}
_MISSING, _INVALID = -1, -2
CODE = np.int32  # dtype of pair, rater, generator and question codes


@dataclass(frozen=True)
class QuestionData:
    """The judgments of one question as parallel arrays (one entry per rater × pair)."""

    question: str
    pair: np.ndarray  # int32 index into EncodedJudgments.pair_ids
    rater: np.ndarray  # int32 index into EncodedJudgments.raters
    answer: np.ndarray  # int8 category: 0 = a, 1 = tie, 2 = b
    left_is_a: np.ndarray  # int8: 1 = A was shown left, 0 = B was shown left, -1 = unknown
    gold: np.ndarray  # int8 expected category, -1 = not a gold pair

    @property
    def n(self) -> int:
        return int(self.answer.size)


@dataclass(frozen=True)
class EncodedJudgments:
    """Validated judgments; build with :func:`encode_judgments`.

    ``pair_generator_a[p]`` / ``pair_generator_b[p]`` index ``generators`` (sorted names);
    ``pair_ids[p]`` / ``raters[r]`` are the caller's original labels.
    """

    questions: list[str]
    generators: list[str]
    raters: np.ndarray
    pair_ids: np.ndarray
    pair_generator_a: np.ndarray
    pair_generator_b: np.ndarray
    n_rows: int
    dropped: dict[str, int]
    blocks: dict[str, QuestionData] = field(repr=False)
    prompt_ids: np.ndarray | None = None  # per pair, when the input has a prompt_id column

    def question(self, key: str) -> QuestionData:
        return self.blocks[key]

    @property
    def n_pairs(self) -> int:
        return int(self.pair_ids.size)


def _empty_block(question: str) -> QuestionData:
    codes, i8 = np.empty(0, CODE), np.empty(0, np.int8)
    return QuestionData(question, codes, codes, i8, i8, i8)


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Int32 codes (−1 for missing) and uniques.

    Fast paths skip hashing: a categorical column's own codes (unused categories dropped, in
    category order) and dense integer ids (in ascending order). Otherwise pandas' factorize, in
    order of first appearance. (Int32 halves the memory traffic of 64-bit codes.)
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        categories = np.asarray(dtype.categories, dtype=object)
        used = np.bincount(codes.astype(np.intp) + 1, minlength=categories.size + 1)[1:] > 0
        if used.all():
            return codes.astype(CODE), categories
        table = np.append(np.where(used, np.cumsum(used) - 1, -1), -1).astype(CODE)
        return table[codes], categories[used]
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        v = values.to_numpy()
        if v.dtype.kind == "u":
            v = v.astype(np.int64)
        if v.size:
            lo, hi = int(v.min()), int(v.max())
            span = hi - lo + 1
            if span <= max(4 * v.size, 1 << 16):
                shifted = v - lo if lo else v
                present = np.bincount(shifted, minlength=span) > 0
                if present.all():  # already dense: codes are the ids minus the smallest
                    return shifted.astype(CODE), np.arange(lo, hi + 1)
                mapping = (np.cumsum(present) - 1).astype(CODE)
                return mapping[shifted], np.flatnonzero(present) + lo
    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    return codes.astype(CODE), np.asarray(uniques, dtype=object)


def code_answers(values: pd.Series) -> np.ndarray:
    """Answer labels → int8 categories; −1 missing, −2 not one of a/b/tie (case-insensitive)."""
    codes, uniques = _factorize(values)
    lookup = [_ANSWER_INDEX.get(str(u).strip().lower(), _INVALID) for u in uniques.tolist()]
    table = np.array([*lookup, _MISSING], dtype=np.int8)  # code −1 picks the last entry
    return table[codes]


def _code_left(judgments: pd.DataFrame) -> np.ndarray:
    if "left_is_a" not in judgments.columns:
        return np.full(len(judgments), -1, dtype=np.int8)
    col = judgments["left_is_a"]
    if col.dtype == bool:
        return col.to_numpy().astype(np.int8)
    return col.astype("boolean").to_numpy(dtype=np.int8, na_value=-1)


def _generator_codes(judgments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    ca, ua = _factorize(judgments["generator_a"])
    cb, ub = _factorize(judgments["generator_b"])
    names = sorted({str(u) for u in ua.tolist()} | {str(u) for u in ub.tolist()})
    index = {name: i for i, name in enumerate(names)}
    table_a = np.array([*(index[str(u)] for u in ua.tolist()), -1], dtype=CODE)
    table_b = np.array([*(index[str(u)] for u in ub.tolist()), -1], dtype=CODE)
    return table_a[ca], table_b[cb], names


def _pair_generators(
    pair: np.ndarray, gen_a: np.ndarray, gen_b: np.ndarray, n_pairs: int, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generators per pair, and a mask of rows that contradict them.

    A pair's generators are those of its first valid row; later rows naming other generators
    are inconsistent. The fast path writes every row and checks; only when a contradiction
    exists is the first row looked up explicitly.
    """
    pa = np.full(n_pairs, -1, dtype=CODE)
    pb = np.full(n_pairs, -1, dtype=CODE)
    everything = bool(ok.all())
    p, a, b = (pair, gen_a, gen_b) if everything else (pair[ok], gen_a[ok], gen_b[ok])
    pa[p], pb[p] = a, b
    bad = (pa[p] != a) | (pb[p] != b)
    if bad.any():
        first = pd.Series(p).drop_duplicates(keep="first").index.to_numpy()
        pa[p[first]], pb[p[first]] = a[first], b[first]
        bad = (pa[p] != a) | (pb[p] != b)
    inconsistent = np.zeros(pair.size, dtype=bool)
    if bad.any():
        inconsistent[np.flatnonzero(ok)[bad]] = True
    return pa, pb, inconsistent


def encode_judgments(judgments: pd.DataFrame, *, questions: Sequence[str] | None = None) -> EncodedJudgments:
    """Validate and encode a judgments DataFrame (see :mod:`analysis` for the columns).

    Rows are dropped, and counted in ``dropped``, when a required field is missing
    (``missing_field``), the answer is not a/b/tie (``invalid_answer``), both sides name the same
    generator (``same_generator``), the pair's generators differ from the pair's first row
    (``inconsistent_pair``), or the same rater answered the same pair and question again
    (``duplicate``: the last row wins). ``questions`` selects and orders the questions (absent
    ones get empty blocks); by default every question present, in order of first appearance
    (category order for a categorical column, ascending for integer keys).
    Raises ValueError only when rows exist but a required column does not.
    """
    n_rows = len(judgments)
    dropped = {"missing_field": 0, "invalid_answer": 0, "same_generator": 0, "inconsistent_pair": 0, "duplicate": 0}
    if n_rows == 0:
        keys = [str(q) for q in questions or []]
        empty_i = np.empty(0, CODE)
        return EncodedJudgments(keys, [], np.empty(0, object), np.empty(0, object), empty_i, empty_i, 0,
                                dropped, {q: _empty_block(q) for q in keys})
    missing = [c for c in REQUIRED_COLUMNS if c not in judgments.columns]
    if missing:
        raise ValueError(f"judgments lack required column(s): {', '.join(missing)}")

    pair, pair_ids = _factorize(judgments["pair_id"])
    rater, raters = _factorize(judgments["rater"])
    qraw, quniques = _factorize(judgments["question"])
    answer = code_answers(judgments["answer"])
    gen_a, gen_b, generators = _generator_codes(judgments)
    left = _code_left(judgments)
    gold = code_answers(judgments["gold"]) if "gold" in judgments.columns else np.full(n_rows, -1, np.int8)
    gold[gold < 0] = -1

    present = [str(q) for q in quniques.tolist()]
    keys = [str(q) for q in questions] if questions is not None else list(dict.fromkeys(present))
    key_index = {k: i for i, k in enumerate(keys)}
    qmap = np.array([*(key_index.get(q, -1) for q in present), -1], dtype=np.int16 if len(keys) < 2**15 else CODE)
    qcode = qmap[qraw]  # −1: missing question, or one not asked for

    q_missing = qraw < 0
    missing_field = q_missing | (pair < 0) | (rater < 0) | (gen_a < 0) | (gen_b < 0) | (answer == _MISSING)
    dropped["missing_field"] = int((missing_field & ((qcode >= 0) | q_missing)).sum())
    ok = (qcode >= 0) & ~missing_field
    bad_answer = ok & (answer == _INVALID)
    dropped["invalid_answer"] = int(bad_answer.sum())
    ok &= ~bad_answer
    same = ok & (gen_a == gen_b)
    dropped["same_generator"] = int(same.sum())
    ok &= ~same

    n_pairs = int(pair_ids.size)
    pair_a, pair_b, inconsistent = _pair_generators(pair, gen_a, gen_b, n_pairs, ok)
    dropped["inconsistent_pair"] = int(inconsistent.sum())
    ok &= ~inconsistent

    everything = bool(ok.all())
    idx = None if everything else np.flatnonzero(ok)
    q_kept = qcode if everything else qcode[idx]
    rows = np.argsort(q_kept, kind="stable") if len(keys) > 1 else np.arange(q_kept.size)  # int16: radix sort
    if idx is not None:
        rows = idx[rows]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(q_kept, minlength=len(keys)))])
    n_r = max(int(raters.size), 1)
    key_type = np.int32 if n_pairs * n_r < 2**31 else np.int64  # smaller hash keys are faster
    blocks = {}
    for i, k in enumerate(keys):
        r = rows[bounds[i]:bounds[i + 1]]
        key = pair[r].astype(key_type) * key_type(n_r) + rater[r].astype(key_type)
        dup = pd.Series(key).duplicated(keep="last").to_numpy()  # rows keep input order: last = latest
        if dup.any():
            dropped["duplicate"] += int(dup.sum())
            r = r[~dup]
        blocks[k] = QuestionData(k, pair[r], rater[r], answer[r], left[r], gold[r])

    prompt_ids = None
    if "prompt_id" in judgments.columns:
        values = judgments["prompt_id"].to_numpy()
        prompt_ids = np.zeros(n_pairs, dtype=values.dtype) if values.dtype.kind in "iuf" else np.full(
            n_pairs, None, dtype=object)
        prompt_ids[pair[ok]] = values[ok]
    return EncodedJudgments(keys, generators, raters, pair_ids, pair_a, pair_b, n_rows, dropped, blocks,
                            prompt_ids)


def label_order(labels: np.ndarray) -> np.ndarray:
    """Indices that sort labels (numbers numerically, then strings) so outputs do not depend on input order."""
    def key(i: int) -> tuple:
        value = labels[i]
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, str(value))

    return np.array(sorted(range(len(labels)), key=key), dtype=np.int64)


def category_counts(item: np.ndarray, answer: np.ndarray, n_items: int) -> np.ndarray:
    """``counts[i, c]``: how many judgments of item ``i`` chose category ``c`` (int64, n_items × 3)."""
    flat = np.bincount(item.astype(np.int64) * 3 + answer, minlength=n_items * 3)
    return flat.reshape(n_items, 3)


@dataclass(frozen=True)
class PairTable:
    """Vote counts of one question, computed once and shared by agreement, labels and alignment."""

    full: np.ndarray  # n_pairs × 3 counts (a, tie, b) for every encoded pair; zero rows = not judged
    pair: np.ndarray  # indices of the judged pairs, ascending
    counts: np.ndarray  # len(pair) × 3
    m: np.ndarray  # judgments per judged pair


def pair_table(q: QuestionData, n_pairs: int) -> PairTable:
    full = category_counts(q.pair, q.answer.astype(np.int64), n_pairs)
    m_full = full[:, 0] + full[:, 1] + full[:, 2]
    pair = np.flatnonzero(m_full)
    return PairTable(full, pair, full[pair], m_full[pair])
