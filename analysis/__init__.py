"""Pure statistics over judgments and metric scores (numpy/scipy/pandas; no Django imports).

Definitions follow docs STATS.md (agreement, aggregation, Bradley–Terry, alignment, position bias).
Selectors in ``annotation`` build the inputs from the database; views and exports present the
outputs. Everything here can be tested and benchmarked without a database.

Inputs
------
**judgments** — a DataFrame, one row per (pair, rater, question):

============== ======================================================================
pair_id        any hashable id (ints are fastest); determines the pair's generators
rater          str or int id
generator_a    generator name of the pair's A video (canonical order)
generator_b    generator name of the pair's B video
question       rubric question key (str)
answer         "a", "b" or "tie" (case-insensitive); never left/right
left_is_a      optional bool, nullable: was A shown on the left (position bias)
gold           optional "a"/"b"/"tie" expected answer of a gold pair, null otherwise
prompt_id      optional: needed only to match per-video scores
duration_ms    optional; accepted and not used yet
============== ======================================================================

Categorical or integer columns are much faster than Python strings for millions of rows.
Invalid rows (missing fields, unknown answers, A = B, a pair whose generators change,
repeated (pair, rater, question): last wins) are dropped and counted in
``summary.dropped``.

**scores** (optional) — metric values, in either form:

* pair form: ``pair_id``, ``metric``, ``value_a``, ``value_b``;
* video form: ``generator``, ``prompt_id``, ``metric``, ``value`` (judgments need ``prompt_id``).

Optional ``higher_is_better`` (bool per metric, default True). NaN = missing.

Entry point
-----------
``analyze(judgments, scores=None, *, questions=None, bootstrap_rounds=1000, seed=0,
tie_threshold=0.0, dawid_skene=False)`` returns a JSON-serialisable dict::

    schema_version, parameters, warnings (always [] unless a bug produced a non-finite number),
    summary: n_rows, n_answers, dropped{...}, n_pairs, n_raters, generators, questions, metrics, reason
    questions: {<question key>: {
        n_judgments, n_pairs, n_raters, answers{a,tie,b}, reason,
        win_rates: generators, wins, ties, losses, n (k×k, row vs column), win_rate (None = never met)
        ranking: items[{generator, rating, ci_low, ci_high, rank, n, wins, ties, losses, score}],
                 identified, connected, ridge, n_bootstrap_ridge, bootstrap_rounds, warnings, reason
        agreement: percent_agreement, krippendorff_alpha_nominal, krippendorff_alpha_ordinal,
                   fleiss_kappa (each {value, reason, n}), raters_per_pair, per_rater[{rater, n,
                   answers, majority_agreement, pairwise_agreement, gold_accuracy}]
        labels: n_decided, n_undecided, labels{a,tie,b}, n_unanimous, n_split, mean_pair_agreement
        dawid_skene (only when asked)
        alignment: reason, metrics{<name>: pairwise_accuracy (+ ci_low/ci_high, n, tie_threshold),
                   pairwise_accuracy_decisive (human ties left out), kendall_tau_b, generator_spearman,
                   agreement_vs_metric{spearman_abs_delta_vs_pair_agreement, accuracy_unanimous,
                   accuracy_split}, higher_is_better, n_pairs, n_scored, n_missing_score, n_undecided}
        position_bias: overall, per_rater[{rater, n, left_chosen, p_left, ci_low, ci_high, p_value}]
    }}

Every number that cannot be computed is None next to a ``reason`` such as
"not enough data: 1 rater"; no NaN or infinity is ever returned.

Building blocks (array level) live in :mod:`analysis.coding`, :mod:`analysis.agreement`,
:mod:`analysis.aggregation` (``pair_labels`` for the labels endpoint), :mod:`analysis.dawid_skene`,
:mod:`analysis.ranking`, :mod:`analysis.alignment` (with :mod:`analysis.correlation`),
:mod:`analysis.bias`, :mod:`analysis.scores`;
:mod:`analysis.datasets` turns FETV's real ratings into judgments.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.aggregation import majority_vote, pair_labels
    from analysis.coding import EncodedJudgments, encode_judgments
    from analysis.report import analyze

__all__ = ["EncodedJudgments", "analyze", "encode_judgments", "majority_vote", "pair_labels"]

# The public names load their modules on first use (PEP 562): importing one submodule, such as
# analysis.dawid_skene for the exports, must not load scipy and pandas with the whole package
# (about 60 MB of a worker's memory).
_SOURCES = {
    "EncodedJudgments": "analysis.coding",
    "encode_judgments": "analysis.coding",
    "majority_vote": "analysis.aggregation",
    "pair_labels": "analysis.aggregation",
    "analyze": "analysis.report",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
