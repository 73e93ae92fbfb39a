"""Win rates and Bradley–Terry ratings with bootstrap intervals (Chatbot Arena's convention).

Convention (STATS.md): P(a beats b) = σ(ln 10 · (θ_a − θ_b)), rating R = 1000 + 400·θ with θ
centred (ratings average 1000), a tie = half a win and half a loss, maximum likelihood on the
counts of unique (a, b, outcome) rows. The 95 % interval is the 2.5/97.5 % quantile of ratings
refitted on bootstrap resamples of the judgments; rank = 1 + the number of generators whose
lower bound exceeds this one's upper bound.

Speed: resampling n judgments with replacement gives the same distribution of the K cell
counts as a multinomial(n, counts/n) draw, so each round is one multinomial draw over the
K ≤ 3·k² cells instead of n index draws, and all rounds are fitted at once by a batched Newton
iteration (one k × k linear solve per round and step).

No MLE: the MLE exists (is finite) iff the directed "beats" graph — an edge i → j when i has a
win or tie against j — is strongly connected. Otherwise (a generator that never wins or never
loses, a disconnected comparison graph) the fit adds a weak Gaussian prior, a ridge
``RIDGE``·θ²/2 (prior sd ≈ 10 θ = 4000 rating points), which keeps ratings finite; the result
says ``identified: false`` with the reason, and such ratings are bounded by the prior, not by
the data. The same ridge is applied to exactly those bootstrap rounds whose resample has no MLE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import expit

from analysis.coding import TIE, A, B

LN10 = float(np.log(10.0))
SCALE = 400.0
BASE = 1000.0
RIDGE = 1e-2
MAX_STEP = 1.0  # Newton steps longer than this (in θ, = 400 rating points) are shortened


def fit_bradley_terry(wins: np.ndarray, ridge: float | np.ndarray = 0.0, *, init: np.ndarray | None = None,
                      max_iter: int = 200, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Fit θ for one (k × k) or a batch (B × k × k) of win matrices.

    ``wins[..., i, j]`` is the (possibly fractional) number of times i beat j. ``ridge`` (scalar
    or per batch entry) adds λ·Σθ²/2 to the negative log-likelihood. Returns θ (centred, base-10
    logistic scale: R = 1000 + 400 θ) and a per-entry converged flag. With ridge 0 the graph must
    be strongly connected for a finite optimum; otherwise the iteration stops at max_iter.
    ``init`` (k, or B × k) starts the iteration, e.g. bootstrap rounds from the full-data fit.
    """
    w = np.asarray(wins, dtype=float)
    single = w.ndim == 2
    if single:
        w = w[None]
    n_batch, k, _ = w.shape
    lam = np.broadcast_to(np.asarray(ridge, dtype=float), (n_batch,)).copy()
    theta = np.zeros((n_batch, k))
    if init is not None:
        theta[:] = np.asarray(init, dtype=float) - np.mean(init, axis=-1, keepdims=True)
    converged = np.zeros(n_batch, dtype=bool)
    if k < 2:
        converged[:] = True
        return (theta[0], converged[0:1]) if single else (theta, converged)
    total = w + w.transpose(0, 2, 1)
    won = w.sum(axis=2)
    eye = np.eye(k)
    centre = np.ones((k, k)) / k  # fixes the free translation: Newton steps stay centred
    active = np.arange(n_batch)
    for _ in range(max_iter):
        t, n_ij, lam_a = theta[active], total[active], lam[active]
        p = expit(LN10 * (t[:, :, None] - t[:, None, :]))
        grad = LN10 * (won[active] - (n_ij * p).sum(axis=2)) - lam_a[:, None] * t
        curv = (LN10 ** 2) * n_ij * p * (1.0 - p)
        lap = -curv
        lap[:, np.arange(k), np.arange(k)] += curv.sum(axis=2)
        system = lap + lam_a[:, None, None] * eye + centre
        step = np.linalg.solve(system, grad[:, :, None])[:, :, 0]
        size = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(size, 1e-300))[:, None]
        t = t + step
        theta[active] = t - t.mean(axis=1, keepdims=True)
        done = size < tol
        converged[active[done]] = True
        active = active[~done]
        if active.size == 0:
            break
    return (theta[0], converged[0:1]) if single else (theta, converged)


def strongly_connected(wins: np.ndarray) -> np.ndarray:
    """Per batch entry: is the directed graph i → j (wins[i, j] > 0) strongly connected?"""
    w = np.asarray(wins)
    single = w.ndim == 2
    if single:
        w = w[None]
    k = w.shape[-1]
    reach = ((w > 0) | np.eye(k, dtype=bool)).astype(np.float32)
    steps = 1
    while steps < k:
        reach = ((reach @ reach) > 0).astype(np.float32)
        steps *= 2
    ok = reach.reshape(reach.shape[0], -1).all(axis=1)
    return ok[:1] if single else ok


def components(total: np.ndarray) -> list[list[int]]:
    """Connected components of the undirected comparison graph (total[i, j] > 0)."""
    k = total.shape[0]
    seen = np.zeros(k, dtype=bool)
    comps = []
    for start in range(k):
        if seen[start]:
            continue
        stack, comp = [start], []
        seen[start] = True
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in np.flatnonzero((total[i] > 0) & ~seen):
                seen[j] = True
                stack.append(int(j))
        comps.append(sorted(comp))
    return comps


@dataclass(frozen=True)
class Outcomes:
    """Counts of unique (generator i, generator j, outcome) cells for one question."""

    generators: list[str]
    cell_i: np.ndarray
    cell_j: np.ndarray
    cell_outcome: np.ndarray  # 0 = i won, 1 = tie, 2 = j won
    cell_count: np.ndarray

    @classmethod
    def from_arrays(cls, gen_a: np.ndarray, gen_b: np.ndarray, answer: np.ndarray, names: list[str]) -> Outcomes:
        """``gen_a``/``gen_b`` index ``names``; only generators that occur are kept."""
        used = np.flatnonzero(np.bincount(gen_a, minlength=len(names)) + np.bincount(gen_b, minlength=len(names)))
        local = np.full(len(names), -1, dtype=np.int64)
        local[used] = np.arange(used.size)
        k = used.size
        flat = np.bincount((local[gen_a] * k + local[gen_b]) * 3 + answer, minlength=k * k * 3)
        nz = np.flatnonzero(flat)
        return cls([names[g] for g in used], nz // 3 // k, nz // 3 % k, nz % 3, flat[nz])

    def design(self) -> sparse.csr_matrix:
        """Sparse K × k² matrix mapping cell counts to the flattened win matrix (tie = ½ win each way)."""
        k = len(self.generators)
        rows = np.arange(self.cell_count.size)
        to_ij = np.where(self.cell_outcome == A, 1.0, np.where(self.cell_outcome == TIE, 0.5, 0.0))
        to_ji = np.where(self.cell_outcome == B, 1.0, np.where(self.cell_outcome == TIE, 0.5, 0.0))
        data = np.concatenate([to_ij, to_ji])
        cols = np.concatenate([self.cell_i * k + self.cell_j, self.cell_j * k + self.cell_i])
        keep = data > 0
        return sparse.csr_matrix((data[keep], (np.concatenate([rows, rows])[keep], cols[keep])),
                                 shape=(self.cell_count.size, k * k))

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k × k wins[i, j] (i beat j), ties[i, j] (symmetric) and n[i, j] (all comparisons)."""
        k = len(self.generators)
        wins, ties = np.zeros((k, k), dtype=np.int64), np.zeros((k, k), dtype=np.int64)
        for o, i, j in ((A, self.cell_i, self.cell_j), (B, self.cell_j, self.cell_i)):
            sel = self.cell_outcome == o
            np.add.at(wins, (i[sel], j[sel]), self.cell_count[sel])
        sel = self.cell_outcome == TIE
        np.add.at(ties, (self.cell_i[sel], self.cell_j[sel]), self.cell_count[sel])
        ties = ties + ties.T
        return wins, ties, wins + wins.T + ties


def win_rate_report(out: Outcomes) -> dict:
    """Per question: wins / ties / losses between every two generators (row vs column)."""
    wins, ties, n = out.tables()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, wins / np.maximum(n, 1), np.nan)
    return {
        "generators": out.generators,
        "wins": wins.tolist(),
        "ties": ties.tolist(),
        "losses": wins.T.tolist(),
        "n": n.tolist(),
        "win_rate": [[None if np.isnan(x) else float(x) for x in row] for row in rate],
        "note": "row generator against column generator; win_rate = wins / n (ties in n); None: never compared",
    }


def _ranks(rating: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    if low is None or high is None:
        return 1 + (rating[None, :] > rating[:, None]).sum(axis=1)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


def bradley_terry(out: Outcomes, *, bootstrap_rounds: int = 1000, rng: np.random.Generator | None = None,
                  chunk: int | None = None) -> dict:
    """Ratings, 95 % bootstrap intervals and ranks for one question (JSON-ready dict).

    Items are sorted by rating, best first. ``bootstrap_rounds=0`` gives no intervals and ranks
    from the point ratings (equal ratings share a rank).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    k = len(out.generators)
    base = {"convention": "P(a beats b) = 1 / (1 + 10^((R_b - R_a) / 400)); R = 1000 + 400*theta, mean 1000; "
                          "tie = half win + half loss; MLE; 95% percentile bootstrap over judgments",
            "bootstrap_rounds": int(bootstrap_rounds), "identified": True, "connected": True, "ridge": 0.0,
            "n_bootstrap_ridge": 0, "warnings": [], "reason": None}
    if k == 0:
        return {**base, "items": [], "identified": False, "reason": "not enough data: no judgments"}
    wins_t, ties_t, n_t = out.tables()
    if k == 1:
        item = {"generator": out.generators[0], "rating": BASE, "ci_low": BASE, "ci_high": BASE, "rank": 1,
                "n": 0, "wins": 0, "ties": 0, "losses": 0, "score": None}
        return {**base, "items": [item], "reason": "only one generator: nothing to compare"}

    design_t = out.design().T.tocsr()  # k² × K
    w_point = (design_t @ out.cell_count.astype(float)).reshape(k, k)
    identified = bool(strongly_connected(w_point)[0])
    comps = components(n_t)
    ridge = 0.0 if identified else RIDGE
    theta, _ = fit_bradley_terry(w_point, ridge)
    rating = BASE + SCALE * theta
    warnings = []
    if len(comps) > 1:
        names = [[out.generators[i] for i in c] for c in comps]
        warnings.append(f"comparison graph is disconnected ({len(comps)} groups: {names}); ratings are "
                        "comparable only within a group")
    if not identified:
        warnings.append("no maximum-likelihood estimate: some generator never wins (or never loses) against the "
                        f"rest; ratings kept finite by a weak prior (ridge {RIDGE}) and bounded by it, not the data")

    low = high = None
    n_ridge = 0
    if bootstrap_rounds > 0:
        total = int(out.cell_count.sum())
        probs = out.cell_count / total
        chunk = chunk or max(1, min(bootstrap_rounds, int(4_000_000 // (k * k + out.cell_count.size))))
        boots = []
        for start in range(0, bootstrap_rounds, chunk):
            size = min(chunk, bootstrap_rounds - start)
            draws = rng.multinomial(total, probs, size=size).astype(float)
            w = (design_t @ draws.T).T.reshape(size, k, k)
            ok = strongly_connected(w)
            n_ridge += int((~ok).sum())
            th, _ = fit_bradley_terry(w, np.where(ok, 0.0, RIDGE), init=theta)
            boots.append(BASE + SCALE * th)
        boot = np.concatenate(boots)
        low, high = np.quantile(boot, [0.025, 0.975], axis=0)
        if n_ridge:
            warnings.append(f"{n_ridge} of {bootstrap_rounds} bootstrap rounds had no MLE and used the ridge")
    ranks = _ranks(rating, low, high)
    n_gen = n_t.sum(axis=1)
    items = [{
        "generator": out.generators[i],
        "rating": float(rating[i]),
        "ci_low": None if low is None else float(low[i]),
        "ci_high": None if high is None else float(high[i]),
        "rank": int(ranks[i]),
        "n": int(n_gen[i]),
        "wins": int(wins_t[i].sum()),
        "ties": int(ties_t[i].sum()),
        "losses": int(wins_t[:, i].sum()),
        "score": float((wins_t[i].sum() + 0.5 * ties_t[i].sum()) / n_gen[i]) if n_gen[i] else None,
    } for i in np.argsort(-rating, kind="stable")]
    return {**base, "items": items, "identified": identified, "connected": len(comps) == 1, "ridge": ridge,
            "n_bootstrap_ridge": n_ridge, "warnings": warnings}
