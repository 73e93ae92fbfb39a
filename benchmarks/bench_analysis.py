"""Benchmark: the full analysis of 1,000,000 synthetic judgments.

Interpretation of "1,000,000 judgments": one judgment is one rater's verdict on one pair, and
it answers every question of the rubric. So: 20 generators, 333,334 pairs × overlap 3 =
1,000,002 judgments × 6 questions = 6,000,012 answer rows (the input DataFrame of
:func:`analysis.analyze`), 500 raters, plus 3 metrics scored on every pair (pair form). This is
the larger reading of the issue's numbers (50,000 pairs × 3 = 150,000 judgments would be 6.7×
smaller); ``--pairs 50000`` runs that one.

Answers come from latent generator strengths per question, a per-pair prompt effect, rater
noise (a few random-clicking and a few reversed raters), a left-side bias for some raters and
a tie band tuned to ~25 % ties. Columns are categorical/integer, as a selector would build them.

Run:  .venv/bin/python benchmarks/bench_analysis.py  [--pairs N] [--rounds B]
Prints a table (stage, seconds, peak RSS MB) and writes benchmarks/results/analysis.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import analyze  # noqa: E402

QUESTIONS = ["visual_appeal", "text_match", "camera_motion", "object_motion", "consistency", "overall"]
RESULTS = Path(__file__).resolve().parent / "results" / "analysis.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic(n_pairs: int, *, n_generators: int = 20, n_raters: int = 500, overlap: int = 3,
              seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judgments (one row per pair × rater × question) and pair-form metric scores."""
    rng = np.random.default_rng(seed)
    k, q_n = n_generators, len(QUESTIONS)
    strength = rng.normal(0.0, 0.6, size=k)
    per_question = strength[None, :] + rng.normal(0.0, 0.25, size=(q_n, k))
    ga = rng.integers(0, k, size=n_pairs)
    gb = (ga + rng.integers(1, k, size=n_pairs)) % k
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)  # canonical order: A has the smaller name
    ga, gb = lo, hi
    prompt_effect = rng.normal(0.0, 0.5, size=(n_pairs, q_n))

    # Distinct raters per pair: a random start plus distinct offsets.
    first = rng.integers(0, n_raters, size=n_pairs)
    offsets = np.stack([np.zeros(n_pairs, dtype=np.int64)]
                       + [rng.integers(1, n_raters, size=n_pairs) for _ in range(overlap - 1)], axis=1)
    for j in range(2, overlap):  # make later offsets differ from earlier ones
        while True:
            clash = (offsets[:, j:j + 1] == offsets[:, :j]).any(axis=1)
            if not clash.any():
                break
            offsets[clash, j] = rng.integers(1, n_raters, size=int(clash.sum()))
    rater = ((first[:, None] + offsets) % n_raters).ravel()
    pair = np.repeat(np.arange(n_pairs), overlap)
    n_j = pair.size

    noise_sd = rng.uniform(0.3, 1.0, size=n_raters)
    kind = rng.random(n_raters)  # 3 % click randomly, 2 % answer reversed
    random_rater, reversed_rater = kind < 0.03, (kind >= 0.03) & (kind < 0.05)
    left_bias = np.where(rng.random(n_raters) < 0.2, 0.3, 0.0)
    left_is_a = rng.random(n_j) < 0.5
    duration = rng.integers(4_000, 60_000, size=n_j).astype(np.int32)

    answers = np.empty((n_j, q_n), dtype=np.int8)
    for qi in range(q_n):
        diff = per_question[qi, ga[pair]] - per_question[qi, gb[pair]] + prompt_effect[pair, qi]
        seen = diff + rng.normal(0.0, 1.0, size=n_j) * noise_sd[rater]
        seen += np.where(left_is_a, 1.0, -1.0) * left_bias[rater]
        seen = np.where(reversed_rater[rater], -seen, seen)
        ans = np.where(seen > 0.3, 0, np.where(seen < -0.3, 2, 1))
        answers[:, qi] = np.where(random_rater[rater], rng.integers(0, 3, size=n_j), ans)

    names = [f"gen-{i:02d}" for i in range(k)]
    rows = n_j * q_n
    judgments = pd.DataFrame({
        "pair_id": np.repeat(pair, q_n),
        "rater": np.repeat(rater, q_n).astype(np.int32),
        "generator_a": pd.Categorical.from_codes(np.repeat(ga[pair], q_n), names),
        "generator_b": pd.Categorical.from_codes(np.repeat(gb[pair], q_n), names),
        "question": pd.Categorical.from_codes(np.tile(np.arange(q_n), n_j), QUESTIONS),
        "answer": pd.Categorical.from_codes(answers.ravel(), ["a", "tie", "b"]),
        "left_is_a": np.repeat(left_is_a, q_n),
        "duration_ms": np.repeat(duration, q_n),
    })
    assert len(judgments) == rows
    metric_frames = []
    for m, (weight, sd) in enumerate([(1.0, 0.6), (0.6, 0.8), (0.2, 1.0)]):
        base = weight * strength
        metric_frames.append(pd.DataFrame({
            "pair_id": np.arange(n_pairs),
            "metric": pd.Categorical.from_codes(np.full(n_pairs, m), ["metric_strong", "metric_mid", "metric_weak"]),
            "value_a": base[ga] + prompt_effect[:, 0] * weight + rng.normal(0, sd, n_pairs),
            "value_b": base[gb] + rng.normal(0, sd, n_pairs),
        }))
    scores = pd.concat(metric_frames, ignore_index=True)
    scores["metric"] = scores["metric"].astype(str)
    return judgments, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=333_334)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = time.perf_counter()
    judgments, scores = synthetic(args.pairs)
    gen_seconds = time.perf_counter() - start
    gen_rss = peak_rss_mb()

    profile: dict[str, dict[str, float | None]] = {}
    start = time.perf_counter()
    result = analyze(judgments, scores, bootstrap_rounds=args.rounds, seed=0, profile=profile)
    total = time.perf_counter() - start
    text = json.dumps(result, allow_nan=False)
    rss = peak_rss_mb()

    n_judgments = args.pairs * 3
    stages = [{"stage": "generate synthetic data (not counted)", "seconds": gen_seconds, "peak_rss_mb": gen_rss}]
    stages += [{"stage": name, **vals} for name, vals in profile.items()]
    stages.append({"stage": "analyze() total", "seconds": total, "peak_rss_mb": rss})
    stages = [{"stage": s["stage"], "seconds": round(float(s["seconds"] or 0), 3),
               "peak_rss_mb": round(float(s["peak_rss_mb"] or 0), 1)} for s in stages]
    print(f"{'stage':<40} {'seconds':>8} {'peak RSS MB':>12}")
    for s in stages:
        print(f"{s['stage']:<40} {s['seconds']:>8.2f} {s['peak_rss_mb'] or 0:>12.0f}")
    first = result["questions"][QUESTIONS[0]]
    print(f"\n{n_judgments:,} judgments x {len(QUESTIONS)} questions = {len(judgments):,} answer rows; "
          f"{args.rounds} bootstrap rounds; result JSON {len(text) / 1e6:.1f} MB; "
          f"alpha nominal ({QUESTIONS[0]}) = {first['agreement']['krippendorff_alpha_nominal']['value']:.3f}, "
          f"ties = {first['answers']['tie'] / first['n_judgments']:.1%}")
    print(f"target: < 10 s and < 2048 MB -> {'PASS' if total < 10 and rss < 2048 else 'FAIL'}")

    record = {
        "benchmark": "analysis",
        "interpretation": "1 judgment = 1 rater x 1 pair answering all 6 questions",
        "n_pairs": args.pairs, "overlap": 3, "n_judgments": n_judgments, "n_answer_rows": len(judgments),
        "n_generators": 20, "n_raters": 500, "n_questions": len(QUESTIONS), "n_metrics": 3,
        "bootstrap_rounds": args.rounds, "stages": stages, "analyze_seconds": round(total, 3),
        "peak_rss_mb": round(rss, 1),
        "target": {"seconds": 10, "peak_rss_mb": 2048}, "passed": total < 10 and rss < 2048,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "pandas": pd.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
