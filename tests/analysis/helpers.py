"""Small builders for analysis tests (plain functions: no database, no Django)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
FETV_DIR = REPO / "data" / "fetv"
LABELS = np.array(["a", "tie", "b"])


def judgments(rows: list[tuple], *, question: str = "q") -> pd.DataFrame:
    """Rows of (pair_id, rater, generator_a, generator_b, answer[, left_is_a])."""
    cols = ["pair_id", "rater", "generator_a", "generator_b", "answer", "left_is_a"]
    df = pd.DataFrame([tuple(r) + (None,) * (6 - len(r)) for r in rows], columns=cols)
    df.insert(4, "question", question)
    return df


def battles(wins: int, losses: int, ties: int = 0, a: str = "A", b: str = "B") -> pd.DataFrame:
    """``a`` against ``b``: each battle is its own pair judged by one rater."""
    answers = ["a"] * wins + ["b"] * losses + ["tie"] * ties
    return judgments([(i, "r1", a, b, ans) for i, ans in enumerate(answers)])


def random_judgments(rng: np.random.Generator, *, n_pairs: int = 300, n_generators: int = 5, n_raters: int = 8,
                     overlap: int = 3, questions: tuple[str, ...] = ("q1", "q2"), tie_rate: float = 0.25,
                     strength_sd: float = 0.7) -> pd.DataFrame:
    """Synthetic judgments from latent generator strengths; distinct raters per pair."""
    strength = rng.normal(0, strength_sd, n_generators)
    names = [f"g{i}" for i in range(n_generators)]
    rows = []
    for p in range(n_pairs):
        ga, gb = sorted(rng.choice(n_generators, size=2, replace=False))
        raters = rng.choice(n_raters, size=overlap, replace=False)
        for r in raters:
            left_is_a = bool(rng.random() < 0.5)
            for q in questions:
                u = rng.random()
                p_a = 1 / (1 + 10 ** (strength[gb] - strength[ga]))
                ans = "tie" if u < tie_rate else ("a" if rng.random() < p_a else "b")
                rows.append((p, f"r{r}", names[ga], names[gb], q, ans, left_is_a))
    return pd.DataFrame(rows, columns=["pair_id", "rater", "generator_a", "generator_b", "question", "answer",
                                       "left_is_a"])
