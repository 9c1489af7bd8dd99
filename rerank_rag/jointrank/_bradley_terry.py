"""Bradley-Terry aggregation with a prior (maximum a posteriori log-strengths).

Two solvers for the same estimate:

* pure Python (always available): cyclic coordinate Newton steps on the
  log-strengths, each followed by an exact 1-D solve for the *level* of every
  connected component. The comparisons only fix strength differences inside a
  component; its level is set by the weak prior alone, and coordinate steps crawl
  along that direction (hundreds of sweeps); solving it directly removes the slow
  mode. A sweep-ratio (Aitken-style) extrapolation removes the next one.
* numpy (used when numpy is importable and there are at least
  :data:`NUMPY_MIN_COMPARISONS` comparisons): Newton's method on all log-strengths at
  once, with a backtracking line search while the steps are large. The blocks are
  stacked as ``(blocks, k, k)`` arrays, so the gradient and the Hessian-vector
  products are a few whole-array operations and a batched ``matmul``; the Newton
  system is solved by Jacobi-preconditioned conjugate gradients (no LAPACK call, so
  no BLAS thread pool wakes up for a 100-item query). It converges in 6-10 Newton
  steps, where the pure-Python sweeps need 20-30 passes over every comparison.

Both stop at the same tolerance on the log-strengths; their scores agree to about
``tol`` and their rankings agree except between items whose scores differ by less
than that. numpy is imported on first use only (``import rerank_rag`` never loads it).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import repeat
from operator import add, mul, truediv
from typing import Any

from ._agg_base import ComparisonsLike, as_comparisons, finish, getter
from ._comparisons import Comparisons

__all__ = ["bradley_terry", "NUMPY_MIN_COMPARISONS"]

#: The numpy solver is used from this many comparisons up (below, numpy's per-call
#: overhead costs more than it saves).
NUMPY_MIN_COMPARISONS = 1500

_numpy: Any = None  # the numpy module, False when unavailable, None before the first look


def _np() -> Any:
    global _numpy
    if _numpy is None:
        try:
            import numpy
        except ImportError:  # pragma: no cover - numpy ships with the dev/eval extras
            _numpy = False
        else:
            _numpy = numpy
    return _numpy


def bradley_terry(
    comparisons: ComparisonsLike,
    n: int | None = None,
    *,
    prior: float = 1.0,
    tol: float = 1e-6,
    max_iter: int = 1000,
    solver: str = "auto",
) -> list[float]:
    """Bradley-Terry log-strengths with a prior (maximum a posteriori).

    Model: ``P(i beats j) = p_i / (p_i + p_j)``. Each item additionally won and lost
    ``prior`` games against a virtual opponent of strength 1. Without such a prior (the
    reference's evalica BT, Newman and eigen) the maximum-likelihood strengths do not
    exist for perfectly consistent comparisons (the best item's strength diverges) and
    the reference returns all-zero scores, i.e. the input order. With it the estimate
    always exists, is unique, and stays comparable across disconnected parts of the
    graph. Score = ``log(p_i)``; 0 is the virtual opponent's (average) level.

    Args:
        prior: virtual games won and lost per item (> 0).
        tol: stop when no log-strength moves by more than ``tol`` in an iteration.
        max_iter: cap on sweeps (pure Python) or Newton steps (numpy).
        solver: ``"auto"`` (numpy when importable and there are at least
            :data:`NUMPY_MIN_COMPARISONS` comparisons), ``"python"`` or ``"numpy"``.
    """
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    if solver not in ("auto", "python", "numpy"):
        raise ValueError(f"solver must be 'auto', 'python' or 'numpy', got {solver!r}")
    c = as_comparisons(comparisons, n)
    use_numpy = solver == "numpy" or (
        solver == "auto" and len(c) >= NUMPY_MIN_COMPARISONS and _np() is not False
    )
    if use_numpy:
        if _np() is False:
            raise ImportError("bradley_terry(solver='numpy') needs numpy: pip install numpy")
        theta = _solve_numpy(c, prior, tol, max_iter)
    else:
        theta = [math.log(v) for v in _solve_python(c, prior, tol, max_iter)]
    return finish(theta, c.compared(), 0.0)


# --------------------------------------------------------------------- pure Python


def _components(c: Comparisons) -> list[list[int]]:
    """Connected components (2+ items) of the comparison graph."""
    from ._designs import connected_components

    linked = [o for o, t in c.rankings if t > 0 and len(o) > 1]
    return [g for g in connected_components(linked, c.n) if len(g) > 1]


def _level(p: list[float], comp: list[int]) -> float:
    """A Newton step for the common shift ``s`` of the log-strengths of ``comp``.

    Comparisons inside the component do not change under a common shift, so only the
    prior terms matter: the posterior is maximal along that direction where
    ``sum(1 - 2 sigmoid(theta_i + s)) = 0``. One step per sweep suffices: the sweeps
    repeat it, and it converges quadratically.
    """
    qs = [v / (1.0 + v) for v in map(p.__getitem__, comp)]  # sigmoid(theta_i)
    slope = 2.0 * sum(q - q * q for q in qs)
    if slope <= 0.0:
        return 0.0
    step = (len(qs) - 2.0 * sum(qs)) / slope
    return 2.0 if step > 2.0 else -2.0 if step < -2.0 else step


def _solve_python(c: Comparisons, prior: float, tol: float, max_iter: int) -> list[float]:
    n = c.n
    beaten, beaters, wins, losses = c.beaten, c.beaters, c.wins, c.losses
    p = [1.0] * n
    # weakest first (by share of comparisons won): information flows up the ranking
    by_share = sorted(
        range(n), key=lambda i: wins[i] / (wins[i] + losses[i]) if wins[i] + losses[i] else 0.0
    )
    rows = []
    for i in by_share:
        games = Counter(beaten[i] + beaters[i])  # opponent -> comparisons with it
        if games:
            rows.append((i, getter(list(games)), [float(v) for v in games.values()], wins[i] + prior))
    comps = _components(c)
    two_prior = 2.0 * prior
    prev_delta = prev_ratio = 0.0
    for _ in range(max_iter):
        old = p[:]
        worst = 0.0
        for i, get, nij, won in rows:
            pi = p[i]
            pj = get(p)
            q = list(map(add, repeat(pi), pj))
            inv = list(map(truediv, nij, q))  # n_ij / (p_i + p_j)
            prior_inv = two_prior / (pi + 1.0)
            expected = pi * (sum(inv) + prior_inv)
            variance = pi * (sum(map(truediv, map(mul, inv, pj), q)) + prior_inv / (pi + 1.0))
            step = (won - expected) / variance
            step = 2.0 if step > 2.0 else -2.0 if step < -2.0 else step
            p[i] = pi * math.exp(step)
            if abs(step) > worst:
                worst = abs(step)
        for comp in comps:
            s = _level(p, comp)
            if s:
                e = math.exp(s)
                for i in comp:
                    p[i] *= e
                if abs(s) > worst:
                    worst = abs(s)
        if worst <= tol:
            break
        delta = sum(abs(math.log(a / b)) for a, b in zip(p, old))
        ratio = delta / prev_delta if prev_delta else 0.0
        if 0.0 < ratio < 0.95 and prev_ratio and abs(ratio - prev_ratio) < 0.02 * ratio:
            f = ratio / (1.0 - ratio)  # jump to the limit of the geometric tail
            p = [a * math.exp(max(-20.0, min(20.0, f * math.log(a / b)))) for a, b in zip(p, old)]
            prev_delta = prev_ratio = 0.0
            continue
        prev_ratio, prev_delta = ratio, delta
    return p


# --------------------------------------------------------------------- numpy


def _stacked(np: Any, c: Comparisons) -> list[tuple[Any, Any, Any]]:
    """The block rankings as stacked arrays, one group per block size ``m``:
    ``(items (b, m), compared-pair mask (b, m, m) or None, upper triangle (m, m))``.

    Position ``p`` beat position ``q`` when ``p < q`` and ``p`` was listed; the mask
    (``None`` when every block of the group listed all or all but one item) drops
    the diagonal and the omitted-omitted pairs, which were not compared.
    """
    groups: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    for o, t in c.rankings:
        m = len(o)
        t = min(t, m)
        if t > 0 and m > 1:
            groups.setdefault(m, []).append((o, t))
    out = []
    for m, lst in groups.items():
        items = np.array([o for o, _ in lst], dtype=np.intp)
        listed = np.array([t for _, t in lst])
        pos = np.arange(m)
        upper = pos[:, None] < pos[None, :]
        mask = None
        if int(listed.min()) < m - 1:
            omitted = pos[None, :] >= listed[:, None]
            mask = ~(omitted[:, :, None] & omitted[:, None, :])
            mask &= pos[:, None] != pos[None, :]
        out.append((items, mask, upper))
    return out


def _solve_numpy(c: Comparisons, prior: float, tol: float, max_iter: int) -> list[float]:
    np = _np()
    n = c.n
    groups = _stacked(np, c)
    flat = [items.ravel() for items, _, _ in groups]
    wins = np.asarray(c.wins, dtype=float)
    losses = np.asarray(c.losses, dtype=float)
    theta = np.log((wins + prior) / (losses + prior))  # log-odds of the smoothed record

    def sigmoid(x: Any) -> Any:
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|

    def objective(th: Any) -> float:
        total = -prior * float(np.logaddexp(0.0, -th).sum() + np.logaddexp(0.0, th).sum())
        for items, mask, upper in groups:
            v = th[items]
            won = upper if mask is None else mask & upper  # p above q, compared
            # -log P(p beat q) = log(1 + exp(theta_q - theta_p))
            total -= float((np.logaddexp(0.0, v[:, None, :] - v[:, :, None]) * won).sum())
        return total

    f: float | None = None
    for _ in range(max_iter):
        s0 = sigmoid(theta)
        prior_diag = 2.0 * prior * s0 * (1.0 - s0)
        grad = wins + prior * (1.0 - 2.0 * s0)
        diag = prior_diag.copy()
        curv = []  # per group: pair curvatures p(1-p), zero where not compared
        for (items, mask, _), fl in zip(groups, flat):
            v = theta[items]
            won = sigmoid(v[:, :, None] - v[:, None, :])  # P(p beats q), 0.5 on the diagonal
            hpq = won - won * won
            if mask is None:
                expected = won.sum(2) - 0.5
                hpq[:, np.arange(hpq.shape[1]), np.arange(hpq.shape[1])] = 0.0
            else:
                expected = (won * mask).sum(2)
                hpq *= mask
            grad -= np.bincount(fl, expected.ravel(), n)
            diag += np.bincount(fl, hpq.sum(2).ravel(), n)
            curv.append(hpq)
        step = _pcg(np, groups, flat, curv, diag, grad)
        biggest = float(np.abs(step).max()) if n else 0.0
        if biggest > 2.0:
            step *= 2.0 / biggest
            biggest = 2.0
        t = 1.0
        if biggest > 0.5:  # far from the optimum: backtrack until the posterior rises
            if f is None:
                f = objective(theta)
            slope = float(grad @ step)
            while True:
                new_f = objective(theta + t * step)
                if new_f >= f + 1e-4 * t * slope or t < 1e-3:
                    break
                t *= 0.5
            f = new_f
        else:  # close: full Newton steps
            f = None
        theta = theta + t * step
        if biggest * t <= tol:
            break
    return [float(v) for v in theta]


def _pcg(np: Any, groups: list[Any], flat: list[Any], curv: list[Any], diag: Any, rhs: Any) -> Any:
    """Solve ``H x = rhs`` (``H`` = the negative Hessian) by Jacobi-preconditioned CG
    to a relative residual of ``min(0.1, sqrt(|rhs|))`` (superlinear Newton)."""
    n = rhs.shape[0]
    g0 = float(np.sqrt(rhs @ rhs))
    if g0 == 0.0:
        return np.zeros(n)
    goal = min(0.1, math.sqrt(g0)) * g0

    def hess_times(x: Any) -> Any:
        out = diag * x
        for (items, _, _), fl, hpq in zip(groups, flat, curv):
            out -= np.bincount(fl, np.matmul(hpq, x[items][:, :, None]).ravel(), n)
        return out

    diag = np.maximum(diag, 1e-300)  # a saturated prior term must not divide by zero
    x = np.zeros(n)
    res = rhs.copy()
    z = res / diag
    direction = z.copy()
    rz = float(res @ z)
    for _ in range(4 * n + 20):
        hd = hess_times(direction)
        alpha = rz / float(direction @ hd)
        x += alpha * direction
        res -= alpha * hd
        if float(np.sqrt(res @ res)) <= goal:
            break
        z = res / diag
        rz_new = float(res @ z)
        direction = z + (rz_new / rz) * direction
        rz = rz_new
    return x
