"""Where to put new facilities: maximal coverage (MCLP) and set cover (LSCP) on the street network.

Distances are network metres (or straight-line metres with ``euclidean=True``) in the project's
projected CRS. Existing facilities are fixed: demand they already serve counts for nothing.

The solvers work on a sparse coverage matrix ``A`` (demand × candidate, ``A[i, j]`` true when
candidate ``j`` serves demand ``i``) and demand weights ``w``:

:func:`reduce_instance`  merge demand with identical coverage sets, drop demand nobody can serve,
                         drop dominated candidates (their coverage set inside another's)
:func:`mclp_greedy`      lazy greedy + swap (interchange) improvement, with a certified bound
:func:`mclp_bound`       upper bounds: LP relaxation (HiGHS) and the submodular greedy bound
:func:`mclp_exact`       the integer program, built sparse in one step, warm-started, time-limited
:func:`lscp`             fewest sites covering all coverable demand (greedy warm start + HiGHS)
:func:`suggest_sites`    the whole analysis on layers → :class:`SitingResult`
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from sanigrid.geo._checks import same_projected_crs
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.coverage import _households, _names, _points_xy, edge_parts
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.network import Network, build_network, insert_points, nearest_distances, reach, snap_points

log = logging.getLogger(__name__)

_TOL = 1e-9


# ------------------------------------------------------------------------------------ solver results
@dataclass(frozen=True)
class Solution:
    """Chosen candidates (positions in the candidate list), their objective and a proven bound.

    For MCLP ``objective`` is the covered weight and ``bound`` an upper bound on the optimum;
    for LSCP ``objective`` is the number of sites and ``bound`` a lower bound. ``gap`` is the
    relative distance between the two (0 = proven optimal). ``gains`` are the marginal gains in
    the order the sites are listed.
    """

    selected: np.ndarray
    objective: float
    bound: float
    gains: np.ndarray
    method: str
    status: str = "optimal"
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        if self.bound == 0 and self.objective == 0:
            return 0.0
        hi, lo = max(self.bound, self.objective), min(self.bound, self.objective)
        g = (hi - lo) / max(abs(hi), 1e-12)
        return 0.0 if g < 1e-9 else g  # bounds are floating-point sums


# ------------------------------------------------------------------------------------ preprocessing
def _csc(A: Any) -> sparse.csc_matrix:
    A = sparse.csc_matrix(A, dtype=np.float64)
    A.sum_duplicates()
    A.data[:] = 1.0
    A.eliminate_zeros()
    return A


def reduce_instance(A: Any, w: np.ndarray, *, drop_dominated: bool = True
                    ) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Shrink a covering instance without changing its optimum.

    Demand rows with identical coverage sets are merged (weights summed), rows no candidate
    serves are dropped, and (with ``drop_dominated``) a candidate whose coverage set lies inside
    another's is dropped (of identical sets the first is kept).

    Returns ``(A', w', rows, cols)``: the reduced matrix and weights, the merged-row id of every
    original row (-1 = dropped) and the original position of every kept candidate.
    """
    A = _csc(A)
    w = np.asarray(w, float)
    R = A.tocsr()
    R.sort_indices()
    nrow = R.shape[0]
    cnt = np.diff(R.indptr)
    rows = np.full(nrow, -1, np.int64)
    live = np.flatnonzero((cnt > 0) & (w > 0))
    # hash each row's column set (two independent random hashes make collisions negligible)
    rng = np.random.default_rng(12345)
    h1 = rng.integers(1, 2**61, A.shape[1], dtype=np.int64).astype(np.uint64)
    h2 = rng.integers(1, 2**61, A.shape[1], dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        k1 = np.add.reduceat(h1[R.indices], R.indptr[:-1][cnt > 0]) if len(R.indices) else np.array([], np.uint64)
        k2 = np.add.reduceat(h2[R.indices] * h2[R.indices], R.indptr[:-1][cnt > 0]) if len(R.indices) else k1
    key1 = np.zeros(nrow, np.uint64)
    key2 = np.zeros(nrow, np.uint64)
    key1[cnt > 0], key2[cnt > 0] = k1, k2
    keys = np.c_[key1[live], key2[live], cnt[live].astype(np.uint64)]
    _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    rep = live[first]
    rows[live] = inv
    w2 = np.bincount(inv, weights=w[live], minlength=len(rep))
    A2 = R[rep].tocsc()
    cols = np.arange(A.shape[1])
    nonempty = np.diff(A2.indptr) > 0
    if drop_dominated and A2.shape[1] > 1:
        keep = nonempty & _undominated(A2)
    else:
        keep = nonempty
    cols = cols[keep]
    return A2[:, keep].tocsc(), w2, rows, cols


def _undominated(A: sparse.csc_matrix) -> np.ndarray:
    """Candidates whose coverage set is not inside another candidate's."""
    size = np.diff(A.indptr).astype(np.int64)
    O = (A.T @ A).tocoo()  # overlap counts between candidates
    j, k, o = O.row, O.col, O.data
    sub = (j != k) & (o >= size[j])  # set j ⊆ set k
    strict = sub & ((size[k] > size[j]) | (k < j))  # identical sets: keep the first
    dominated = np.zeros(A.shape[1], bool)
    dominated[j[strict]] = True
    return ~dominated


def _undominated_rows(A: sparse.csc_matrix) -> np.ndarray:
    """Set cover: a row whose candidate set contains another row's set is implied by it; keep the rest.

    Rows are assumed distinct (merged by :func:`reduce_instance`).
    """
    R = A.tocsr()
    size = np.diff(R.indptr).astype(np.int64)
    O = (R @ R.T).tocoo()
    i, k, o = O.row, O.col, O.data
    implied = (i != k) & (o >= size[k]) & (size[i] > size[k])  # N_k ⊂ N_i: row i is implied by row k
    keep = np.ones(A.shape[0], bool)
    keep[i[implied]] = False
    return keep


# ------------------------------------------------------------------------------------ MCLP heuristics
def _greedy(A: sparse.csc_matrix, w: np.ndarray, p: int, covered: np.ndarray | None = None
            ) -> tuple[list[int], list[float], np.ndarray]:
    """Lazy greedy (CELF): re-evaluate a candidate only when it reaches the top of the heap."""
    covered = np.zeros(A.shape[0], bool) if covered is None else covered.copy()
    ip, ix = A.indptr, A.indices
    wu = np.where(covered, 0.0, w)
    gain0 = np.asarray(A.T @ wu).ravel()
    heap = [(-g, j) for j, g in enumerate(gain0) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    gains: list[float] = []
    while heap and len(chosen) < p:
        negg, j = heapq.heappop(heap)
        r = ix[ip[j]:ip[j + 1]]
        g = float(w[r][~covered[r]].sum())
        if not heap or g >= -heap[0][0] - _TOL:
            if g <= 0:
                break
            chosen.append(j)
            gains.append(g)
            covered[r] = True
        elif g > 0:
            heapq.heappush(heap, (-g, j))
    return chosen, gains, covered


def _swap(A: sparse.csc_matrix, w: np.ndarray, chosen: list[int], *, max_rounds: int = 200) -> list[int]:
    """Best-improvement interchange: swap a chosen site for another while coverage grows."""
    S = list(chosen)
    if not S:
        return S
    AT = A.T.tocsr()
    for _ in range(max_rounds):
        c = np.asarray(A[:, S].sum(axis=1)).ravel()
        g0 = AT @ np.where(c == 0, w, 0.0)  # gain of adding j
        uniq = np.where(c == 1, w, 0.0)
        U = A[:, S].multiply(uniq[:, None]).tocsc()  # weight only s covers, per s
        loss = np.asarray(U.sum(axis=0)).ravel()
        E = (AT @ U).toarray()  # weight of s's unique demand that j also covers
        delta = g0[:, None] + E - loss[None, :]
        delta[S, :] = -np.inf
        j, si = np.unravel_index(np.argmax(delta), delta.shape)
        if delta[j, si] <= 1e-9 * max(1.0, float(w.sum())):
            break
        S[si] = int(j)
    return S


def _order_gains(A: sparse.csc_matrix, w: np.ndarray, S: list[int], covered: np.ndarray | None = None
                 ) -> tuple[list[int], list[float]]:
    """List chosen sites in greedy order with their marginal gains."""
    sub = A[:, S]
    order, gains, _ = _greedy(sub.tocsc(), w, len(S), covered)
    rest = [i for i in range(len(S)) if i not in order]
    return [S[i] for i in order + rest], gains + [0.0] * len(rest)


def _lagrangian(A: sparse.csc_matrix, w: np.ndarray, p: int, lam: np.ndarray) -> float:
    """Lagrangian upper bound for any λ ≥ 0: Σ (w_i − λ_i)⁺ + sum of the p largest (Aᵀλ)_j."""
    lam = np.maximum(lam, 0.0)
    score = np.asarray(A.T @ lam).ravel()
    top = np.sort(score)[::-1][: min(p, len(score))].sum()
    return float(np.maximum(w - lam, 0).sum() + top)


def _lp_relaxation(A: sparse.csc_matrix, w: np.ndarray, p: int, *, time_limit_s: float = 30.0
                   ) -> tuple[np.ndarray | None, float | None]:
    """LP relaxation by HiGHS interior point (no crossover): site values x and a *certified* bound.

    The interior-point objective itself is only approximate, so the bound returned is the
    Lagrangian bound evaluated exactly at the LP's duals (valid for any duals).
    """
    import highspy

    cost, M, row_lo, row_hi, _, _ = _mclp_model(A, w, p)
    h = _highs(cost, M, row_lo, row_hi, maximize=True, time_limit_s=time_limit_s)
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("run_crossover", "off")
    h.run()
    sol = h.getSolution()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
        return None, None
    nd, nc = A.shape
    x = np.asarray(sol.col_value, float)[:nc]
    lam = np.abs(np.asarray(sol.row_dual, float)[:nd])
    return x, _lagrangian(A, w, p, lam)


def mclp_bound(A: Any, w: np.ndarray, p: int, *, selected: list[int] | None = None, lp: bool = True
               ) -> tuple[float, dict[str, float]]:
    """An upper bound on the best coverage with ``p`` sites (the smallest of the bounds computed).

    * submodular bound: f(OPT) ≤ f(S) + sum of the ``p`` largest marginal gains w.r.t. ``S``;
    * LP relaxation (HiGHS), certified through the Lagrangian bound at its duals.
    """
    A = _csc(A)
    w = np.asarray(w, float)
    out: dict[str, float] = {"total": float(w.sum())}
    if selected:
        cov = np.asarray(A[:, selected].sum(axis=1)).ravel() > 0
        fS = float(w[cov].sum())
        g = np.asarray(A.T @ np.where(cov, 0.0, w)).ravel()
        out["submodular"] = fS + float(np.sort(g)[::-1][:p].sum())
    if lp:
        _, ub = _lp_relaxation(A, w, p)
        if ub is not None:
            out["lp"] = ub
    return min(out.values()), out


def mclp_greedy(A: Any, w: np.ndarray, p: int, *, improve: bool = True, bound: bool = True,
                reduce: bool = True, polish_s: float = 0.4, polish_gap: float = 0.005, max_starts: int = 32,
                seed: int = 0) -> Solution:
    """Maximal coverage with ``p`` sites: lazy greedy, then swap improvement, with a certified gap.

    The greedy start and (with ``bound``) the LP-relaxation's top sites and Lagrangian top sites
    are each improved by interchange; the best is kept. The bound is certified: the smaller of
    the submodular bound and the Lagrangian bound at the LP duals.

    Parameters
    ----------
    A : (demand × candidate) sparse 0/1 coverage matrix.
    w : demand weights (households, or metres of street).
    p : number of new sites.
    improve : run the interchange improvement.
    bound : solve the LP relaxation for the bound (otherwise only the cheap submodular bound).
    polish_s : when the certified gap is above ``polish_gap``, spend at most this many seconds on
        up to ``max_starts`` randomised roundings of the LP solution, each improved by interchange
        (0 = never; ``seed`` fixes the draws).
    """
    t0 = time.perf_counter()
    A0 = _csc(A)
    w0 = np.asarray(w, float)
    if reduce:
        A1, w1, _, cols = reduce_instance(A0, w0)
    else:
        A1, w1, cols = A0, w0, np.arange(A0.shape[1])
    p_eff = min(p, A1.shape[1])
    S, _, _ = _greedy(A1, w1, p_eff)
    greedy_obj = _objective(A1, w1, S)
    starts = [S]
    parts: dict[str, float] = {"total": float(w1.sum())}
    x_lp = None
    if bound and A1.shape[1] > 0:
        x_lp, ub = _lp_relaxation(A1, w1, p_eff)
        if ub is not None and x_lp is not None:
            parts["lp"] = ub
            starts.append([int(j) for j in np.argsort(-x_lp, kind="stable")[:p_eff]])
    best, best_obj = S, greedy_obj
    for st in starts:
        cand = _swap(A1, w1, st) if improve else st
        val = _objective(A1, w1, cand)
        if val > best_obj + 1e-9:
            best, best_obj = cand, val
    ub_now = min(parts.values())
    if improve and polish_s > 0 and x_lp is not None and best_obj < ub_now * (1 - polish_gap):
        # multi-start: randomised rounding of the LP solution, each start improved by interchange,
        # within a time budget (fixed seed: the same input gives the same answer)
        rng = np.random.default_rng(seed)
        prob = np.maximum(x_lp, 1e-9)
        prob /= prob.sum()
        t_end = time.perf_counter() + polish_s
        for _ in range(max_starts):
            if time.perf_counter() > t_end or best_obj >= ub_now * (1 - polish_gap):
                break
            st = [int(j) for j in rng.choice(len(prob), p_eff, replace=False, p=prob)]
            cand = _swap(A1, w1, st)
            val = _objective(A1, w1, cand)
            if val > best_obj + 1e-9:
                best, best_obj = cand, val
    S, gains = _order_gains(A1, w1, best)
    obj = _objective(A1, w1, S)
    _, sub = mclp_bound(A1, w1, p, selected=S, lp=False)
    parts.update(sub)
    ub = min(parts.values())
    sel = cols[np.asarray(S, np.int64)] if S else np.array([], np.int64)
    proven = ub <= obj * (1 + 1e-9) + 1e-9
    return Solution(selected=sel, objective=obj, bound=max(ub, obj), gains=np.asarray(gains), method="greedy+swap",
                    status="optimal" if proven else "heuristic", seconds=time.perf_counter() - t0,
                    info={"greedy": greedy_obj, **{f"bound_{k}": v for k, v in parts.items()},
                          "demand_rows": A1.shape[0], "candidates": A1.shape[1]})


def _objective(A: sparse.csc_matrix, w: np.ndarray, S: list[int]) -> float:
    if not S:
        return 0.0
    cov = np.asarray(A[:, S].sum(axis=1)).ravel() > 0
    return float(w[cov].sum())


# ------------------------------------------------------------------------------------ integer programs
def _mclp_model(A: sparse.csc_matrix, w: np.ndarray, p: int) -> tuple:
    """max w·y  s.t.  y_i − Σ_j A_ij x_j ≤ 0,  Σ x_j = p,  x ∈ {0,1}, 0 ≤ y ≤ 1 (y continuous)."""
    nd, nc = A.shape
    I = sparse.identity(nd, format="csc")
    M = sparse.vstack([sparse.hstack([-A, I]), sparse.hstack([sparse.csc_matrix(np.ones((1, nc))),
                                                              sparse.csc_matrix((1, nd))])]).tocsc()
    cost = np.r_[np.zeros(nc), w]
    row_lo = np.r_[np.full(nd, -np.inf), min(p, nc)]
    row_hi = np.r_[np.zeros(nd), min(p, nc)]
    integ = np.r_[np.ones(nc, bool), np.zeros(nd, bool)]
    return cost, M, row_lo, row_hi, integ, True


def _lscp_model(A: sparse.csc_matrix) -> tuple:
    """min Σ x_j  s.t.  Σ_j A_ij x_j ≥ 1,  x ∈ {0,1}."""
    nd, nc = A.shape
    return np.ones(nc), A, np.ones(nd), np.full(nd, np.inf), np.ones(nc, bool), False


def _highs(cost: np.ndarray, M: sparse.csc_matrix, row_lo: np.ndarray, row_hi: np.ndarray, *, maximize: bool,
           time_limit_s: float, integ: np.ndarray | None = None) -> Any:
    """A HiGHS instance holding the model, passed in one step from the sparse matrix."""
    import highspy
    from highspy._core import _Highs

    # the core binding: the Python wrapper (highspy.Highs) registers callbacks when constructed, which
    # prints HiGHS's banner before any option can be set; the core prints nothing once output_flag is off.
    # No process-wide redirect of stdout (unsafe in threads and Dask workers).
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    nr, ncol = M.shape
    lp.num_col_, lp.num_row_ = ncol, nr
    lp.col_cost_ = cost.astype(float)
    lp.col_lower_ = np.zeros(ncol)
    lp.col_upper_ = np.ones(ncol)
    lp.row_lower_ = np.asarray(row_lo, float)
    lp.row_upper_ = np.asarray(row_hi, float)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    M = M.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = M.indptr.astype(np.int32)
    lp.a_matrix_.index_ = M.indices.astype(np.int32)
    lp.a_matrix_.value_ = M.data.astype(float)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, nr
    if integ is not None:
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in integ]
    h.passModel(lp)
    return h


def _solve(cost: np.ndarray, M: sparse.csc_matrix, row_lo: np.ndarray, row_hi: np.ndarray, integ: np.ndarray,
           maximize: bool, *, integer: bool = True, time_limit_s: float = 60.0, warm: np.ndarray | None = None,
           presolve: bool = True) -> tuple[np.ndarray, float, float, str]:
    """Solve with HiGHS; returns (x, objective, proven bound, status). Bound is the LP value for LPs."""
    import highspy

    h = _highs(cost, M, row_lo, row_hi, maximize=maximize, time_limit_s=time_limit_s,
               integ=integ if integer else None)
    ncol = M.shape[1]
    if not presolve:
        h.setOptionValue("presolve", "off")
    if integer and warm is not None:
        wv = np.asarray(warm, float)
        h.setSolution(len(wv), np.arange(len(wv), dtype=np.int32), wv)
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    status = {highspy.HighsModelStatus.kOptimal: "optimal",
              highspy.HighsModelStatus.kTimeLimit: "time_limit",
              highspy.HighsModelStatus.kInfeasible: "infeasible"}.get(ms, h.modelStatusToString(ms))
    x = np.asarray(h.getSolution().col_value, float) if h.getSolution().value_valid else np.full(ncol, np.nan)
    obj = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if integer else obj
    if integer and warm is not None and not np.isnan(x).any() and abs(float(cost @ x) - obj) > 1e-6 * max(1, abs(obj)):
        # HiGHS 1.16 with presolve can hand back the user's start instead of the better incumbent it
        # reports; solve again from scratch rather than return a solution that is not the one proven
        log.debug("HiGHS returned the warm start instead of its incumbent; solving again without it")
        return _solve(cost, M, row_lo, row_hi, integ, maximize, integer=True, time_limit_s=time_limit_s)
    return x, obj, bound, status


def mclp_exact(A: Any, w: np.ndarray, p: int, *, time_limit_s: float = 60.0, warm: Solution | None = None
               ) -> Solution:
    """Maximal coverage solved as an integer program (HiGHS), on the reduced instance.

    The model is built sparse in one step; demand with identical coverage sets is merged and
    dominated candidates dropped first; coverage variables are continuous (integral at any
    optimum once the sites are); the greedy+swap solution warm-starts the solver. When the time
    limit stops it, the best solution found is returned with its proven bound (``status`` =
    ``time_limit``).
    """
    t0 = time.perf_counter()
    A0, w0 = _csc(A), np.asarray(w, float)
    A1, w1, _, cols = reduce_instance(A0, w0)
    if A1.shape[1] == 0:
        return Solution(np.array([], np.int64), 0.0, 0.0, np.array([]), "exact", seconds=time.perf_counter() - t0)
    if warm is None:
        warm = mclp_greedy(A1, w1, p, bound=True, reduce=False)
        S = list(warm.selected)
        if warm.gap <= 1e-9:  # the LP bound already proves the heuristic optimal
            S, gains = _order_gains(A1, w1, S)
            return Solution(selected=cols[np.asarray(S, np.int64)], objective=warm.objective, bound=warm.bound,
                            gains=np.asarray(gains), method="exact", status="optimal",
                            seconds=time.perf_counter() - t0,
                            info={"demand_rows": A1.shape[0], "candidates": A1.shape[1], "proved_by": "lp_bound"})
    else:
        pos = {int(c): i for i, c in enumerate(cols)}
        S = [pos[int(s)] for s in warm.selected if int(s) in pos]
    nd, nc = A1.shape
    x0 = np.zeros(nc)
    x0[S] = 1
    y0 = (np.asarray(A1[:, S].sum(axis=1)).ravel() > 0).astype(float) if S else np.zeros(nd)
    model = _mclp_model(A1, w1, p)
    x, obj, bound, status = _solve(*model, time_limit_s=time_limit_s, warm=np.r_[x0, y0])
    if np.isnan(x).any():
        chosen = S
    else:
        chosen = [int(j) for j in np.flatnonzero(x[:nc] > 0.5)]
    if _objective(A1, w1, chosen) < _objective(A1, w1, S):
        chosen = S
    chosen, gains = _order_gains(A1, w1, chosen)
    value = _objective(A1, w1, chosen)
    bound = max(bound, value)
    if status == "optimal" and bound > value * (1 + 1e-9) + 1e-9:
        status = "optimal within HiGHS's 0.01 % gap"  # mip_rel_gap default; the bound is reported as proven
    return Solution(selected=cols[np.asarray(chosen, np.int64)], objective=value, bound=bound,
                    gains=np.asarray(gains), method="exact", status=status, seconds=time.perf_counter() - t0,
                    info={"demand_rows": nd, "candidates": nc})


def _set_cover_kernel(A: sparse.csc_matrix) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Classic set-cover reductions, repeated until nothing changes.

    A row served by one candidate only fixes that candidate (and drops the rows it serves); a row
    whose candidate set contains another row's is implied by it; a candidate whose set (over the
    remaining rows) lies inside another's is dropped. Returns the remaining rows and candidates
    (positions in ``A``) and the fixed candidates.
    """
    rows = np.arange(A.shape[0])
    cols = np.arange(A.shape[1])
    fixed: list[int] = []
    R = A.tocsr()
    while len(rows) and len(cols):
        B = R[rows][:, cols].tocsc()
        n0 = (len(rows), len(cols))
        Br = B.tocsr()
        cnt = np.diff(Br.indptr)
        single = np.flatnonzero(cnt == 1)
        if len(single):
            fix = np.unique(Br.indices[Br.indptr[single]])
            fixed.extend(int(cols[j]) for j in fix)
            served = np.asarray(B[:, fix].sum(axis=1)).ravel() > 0
            keepc = np.ones(len(cols), bool)
            keepc[fix] = False
            rows, cols = rows[~served], cols[keepc]
            continue
        keepr = _undominated_rows(B)
        B = B[keepr].tocsc()
        rows = rows[keepr]
        keepc = (np.diff(B.indptr) > 0) & _undominated(B)
        cols = cols[keepc]
        if (len(rows), len(cols)) == n0:
            break
    return rows, cols, fixed


def lscp(A: Any, *, time_limit_s: float = 60.0, exact: bool = True) -> tuple[Solution, np.ndarray]:
    """Fewest sites so that every coverable demand row is served.

    The instance is reduced first (identical rows merged, implied rows and dominated candidates
    dropped, candidates that alone serve some row fixed, repeated to a fixpoint); the kernel left
    is solved by HiGHS (warm-started from the greedy cover, time-limited: then the best cover
    found and its proven lower bound are returned).

    Returns the solution (``objective`` = number of sites, ``bound`` = proven lower bound) and a
    boolean mask of demand rows that no candidate can serve (left out of the requirement).
    """
    t0 = time.perf_counter()
    A0 = _csc(A)
    w = np.ones(A0.shape[0])
    uncoverable = np.diff(A0.tocsr().indptr) == 0
    A1, _, _, cols = reduce_instance(A0, w, drop_dominated=False)
    w1 = np.ones(A1.shape[0])
    nd, nc = A1.shape
    if nd == 0:
        return Solution(np.array([], np.int64), 0.0, 0.0, np.array([]), "lscp",
                        seconds=time.perf_counter() - t0), uncoverable
    krows, kcols, fixed = _set_cover_kernel(A1)
    K = A1.tocsr()[krows][:, kcols].tocsc()
    status = "optimal"
    lo = 0.0
    kchosen: list[int] = []
    if K.shape[0]:
        kw = np.ones(K.shape[0])
        S, _, _ = _greedy(K, kw, K.shape[1])  # greedy set cover of the kernel
        kchosen = S
        status = "heuristic"
        if exact:
            x0 = np.zeros(K.shape[1])
            x0[S] = 1
            x, _, bound, status = _solve(*_lscp_model(K), time_limit_s=time_limit_s, warm=x0)
            if not np.isnan(x).any():
                cand = [int(j) for j in np.flatnonzero(x > 0.5)]
                if len(cand) <= len(S) and _objective(K, kw, cand) >= kw.sum() - 1e-9:
                    kchosen = cand
            lo = float(np.ceil(bound - 1e-6)) if np.isfinite(bound) else 0.0
        else:
            _, lpobj, _, st = _solve(*_lscp_model(K), integer=False, time_limit_s=time_limit_s)
            lo = float(np.ceil(lpobj - 1e-6)) if st == "optimal" else 0.0
    chosen = fixed + [int(kcols[j]) for j in kchosen]
    lo += len(fixed)
    chosen, gains = _order_gains(A1, w1, chosen)
    if lo >= len(chosen):
        status = "optimal"
    return Solution(selected=cols[np.asarray(chosen, np.int64)], objective=float(len(chosen)),
                    bound=min(lo, float(len(chosen))), gains=np.asarray(gains), method="lscp",
                    status=status, seconds=time.perf_counter() - t0,
                    info={"demand_rows": nd, "candidates": nc, "kernel_rows": int(K.shape[0]),
                          "kernel_candidates": int(K.shape[1]), "fixed": len(fixed)}), uncoverable


# ------------------------------------------------------------------------------------ on layers
@dataclass(frozen=True)
class SitingResult:
    """Suggested sites and what they achieve.

    sites : the new sites (rank, gain, households newly served, grid) as points.
    candidates : all candidate sites considered, with ``excluded`` and the reason.
    unreachable : demand no candidate can serve, with the reason.
    solution : the MCLP solution; lscp : the set-cover solution (when asked).
    summary, params : headline figures and the settings that produced them.
    """

    sites: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    unreachable: gpd.GeoDataFrame
    solution: Solution | None
    lscp: Solution | None
    summary: dict[str, Any]
    params: dict[str, Any]


def street_points(network: Network, node_dist: np.ndarray | None, *, spacing_m: float, radius_m: float,
                  uncovered_only: bool = True) -> gpd.GeoDataFrame:
    """Points every ``spacing_m`` metres along the (uncovered) street parts, with ``weight_m``.

    Each point stands for the street length around it (``weight_m``, metres); used as candidate
    sites and, without residents, as the demand proxy.
    """
    if node_dist is None:
        node_dist = np.full(network.n_nodes, np.inf)
    parts = edge_parts(network, node_dist, radius_m=radius_m)
    if uncovered_only:
        parts = parts[~parts["covered"]]
    g = parts.geometry.to_numpy()
    L = parts["length_m"].to_numpy()
    n = np.maximum(1, np.round(L / spacing_m)).astype(np.int64)
    idx = np.repeat(np.arange(len(g)), n)
    j = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
    frac = (j + 0.5) / n[idx]
    pts = shapely.line_interpolate_point(g[idx], frac, normalized=True)
    out = gpd.GeoDataFrame({"weight_m": (L / n)[idx], "name": parts["name"].to_numpy()[idx]},
                           geometry=pts, crs=network.crs)
    return out


def suggest_sites(
    facilities: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    alleys: gpd.GeoDataFrame | None = None,
    *,
    kind: str,
    radius_m: float,
    new: int,
    residents: gpd.GeoDataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    exclusion: gpd.GeoDataFrame | None = None,
    min_distance_to_existing_m: float = 0.0,
    candidate_spacing_m: float = 50.0,
    snap_tolerance_m: float = 1.0,
    max_snap_m: float = 200.0,
    exact: bool = False,
    with_lscp: bool = False,
    time_limit_s: float = 60.0,
    euclidean: bool = False,
    network: Network | None = None,
    source: str = "",
) -> SitingResult:
    """Suggest ``new`` sites that serve the most demand the existing facilities leave unserved.

    Parameters
    ----------
    facilities : existing facilities of the kind (fixed).
    streets, alleys : street lines; every layer in one projected CRS in metres.
    radius_m : service radius (network metres, or straight line with ``euclidean``).
    new : number of sites to suggest (MCLP ``p``).
    residents : compounds with ``households`` as the demand; without them, points every
        ``candidate_spacing_m`` along the unserved streets, weighted by the metres they stand for.
    candidates : user-given candidate sites; default points along unserved streets every
        ``candidate_spacing_m`` metres.
    exclusion : polygons where no site may go.
    min_distance_to_existing_m : no new site closer (straight line) to an existing facility.
    exact : solve the integer program (time-limited) instead of greedy+swap.
    with_lscp : also compute the fewest sites that serve all coverable demand.
    """
    t0 = time.perf_counter()
    frames = [facilities, streets] + [f for f in (alleys, residents, grids, candidates, exclusion)
                                      if f is not None and len(f)]
    same_projected_crs(*frames)
    if new < 1:
        raise AnalysisError(f"--new must be at least 1 (got {new})")
    crs = streets.crs
    base = network if network is not None else build_network(streets, alleys, snap_tolerance_m=snap_tolerance_m)
    use_res = residents is not None and len(residents) > 0
    fac_xy = _points_xy(facilities) if len(facilities) else np.zeros((0, 2))

    # demand and candidates need the existing coverage first
    fsn = snap_points(base, facilities.geometry, max_snap_m=max_snap_m) if len(facilities) else None
    if fsn is not None:
        net0, fnodes0 = insert_points(base, fsn)
        d0, _ = nearest_distances(net0, fnodes0, limit_m=radius_m)
    else:
        net0, d0 = base, np.full(base.n_nodes, np.inf)
    if euclidean:
        d0_for_streets = None
    else:
        d0_for_streets = d0
    if use_res:
        assert residents is not None
        demand = residents.copy()
        demand["weight"] = _households(residents)
        demand["name"] = _names(residents, "residents")
    else:
        demand = street_points(net0, d0_for_streets if not euclidean else None, spacing_m=candidate_spacing_m,
                               radius_m=radius_m)
        demand["weight"] = demand["weight_m"]
    if candidates is not None and len(candidates):
        cand = candidates.copy()
        cand["name"] = _names(candidates, "candidate")
    else:
        cand = street_points(net0, d0_for_streets if not euclidean else None, spacing_m=candidate_spacing_m,
                             radius_m=radius_m)
        cand["name"] = [f"候选{i + 1}" + (f" {n}" if isinstance(n, str) and n not in ("", "<NA>", "nan") else "")
                        for i, n in enumerate(cand["name"].astype("object"))]
    cand = cand.reset_index(drop=True)
    cand["geometry"] = gpd.GeoSeries(shapely.points(_points_xy(cand)), crs=crs) if len(cand) else cand.geometry
    cand = gpd.GeoDataFrame(cand, geometry="geometry", crs=crs)
    cand["excluded"] = ""
    cxy = _points_xy(cand) if len(cand) else np.zeros((0, 2))
    if min_distance_to_existing_m > 0 and len(fac_xy) and len(cand):
        dd, _ = cKDTree(fac_xy).query(cxy)
        cand.loc[dd < min_distance_to_existing_m, "excluded"] = f"距现有设施不足 {min_distance_to_existing_m:g} 米"
    if exclusion is not None and len(exclusion) and len(cand):
        hit = shapely.STRtree(exclusion.geometry.to_numpy()).query(cand.geometry.to_numpy(), predicate="intersects")
        cand.loc[np.unique(hit[0]), "excluded"] = "位于禁建区 exclusion zone"
    ok_c = (cand["excluded"] == "").to_numpy()

    dxy = _points_xy(demand) if len(demand) else np.zeros((0, 2))
    dw = demand["weight"].to_numpy(float)
    reason = np.full(len(demand), "", dtype=object)
    if euclidean:
        served = (cKDTree(fac_xy).query(dxy)[0] <= radius_m) if len(fac_xy) and len(dxy) else np.zeros(len(dxy), bool)
        ci = np.flatnonzero(ok_c)
        pairs = cKDTree(dxy).query_ball_point(cxy[ci], radius_m) if len(ci) and len(dxy) else []
        rr = np.concatenate([np.asarray(p, np.int64) for p in pairs]) if len(pairs) else np.array([], np.int64)
        cc = np.repeat(ci, [len(p) for p in pairs]) if len(pairs) else np.array([], np.int64)
        d_attached = np.ones(len(dxy), bool)
    else:
        allpts = gpd.GeoSeries(pd.concat([facilities.geometry, demand.geometry, cand.geometry], ignore_index=True),
                               crs=crs)
        snaps = snap_points(base, allpts, max_snap_m=max_snap_m)
        net, nodes = insert_points(base, snaps)
        nf, nd_ = len(facilities), len(demand)
        fnodes, dnodes, cnodes = nodes[:nf], nodes[nf:nf + nd_], nodes[nf + nd_:]
        dist, _ = nearest_distances(net, fnodes, limit_m=radius_m)
        served = (dnodes >= 0) & (dist[np.maximum(dnodes, 0)] <= radius_m)
        d_attached = dnodes >= 0
        cand.loc[(cnodes < 0) & ok_c, "excluded"] = f"离道路超过 {max_snap_m:g} 米"
        ok_c = ok_c & (cnodes >= 0)
        ci = np.flatnonzero(ok_c)
        k, node, _ = reach(net, cnodes[ci], limit_m=radius_m)
        # node → demand rows (several demand points may share a node)
        att = np.flatnonzero(d_attached)
        N2D = sparse.csr_matrix((np.ones(len(att)), (dnodes[att], att)), shape=(net.n_nodes, len(demand)))
        P = sparse.csr_matrix((np.ones(len(k)), (k, node)), shape=(len(ci), net.n_nodes))
        CD = (P @ N2D).tocoo()
        cc, rr = ci[CD.row], CD.col
    A = sparse.csc_matrix((np.ones(len(rr)), (rr, cc)), shape=(len(demand), len(cand)))
    A.sum_duplicates()
    w_open = np.where(served, 0.0, dw)
    # unreachable demand (not served now, no candidate can serve it)
    coverable = np.diff(A.tocsr().indptr) > 0
    reason[~d_attached] = f"离道路超过 {max_snap_m:g} 米 / farther than {max_snap_m:g} m from any street"
    left = (~served) & d_attached & ~coverable
    if not euclidean and left.any():
        comp = net.component
        ccomp = set(comp[cnodes[ci]].tolist()) if len(ci) else set()
        for i in np.flatnonzero(left):
            reason[i] = ("所在路网孤岛没有候选点 / network island without candidate sites"
                         if comp[dnodes[i]] not in ccomp
                         else f"{radius_m:g} 米内没有可用候选点 / no usable candidate within {radius_m:g} m")
    elif left.any():
        reason[left] = f"{radius_m:g} 米内没有可用候选点 / no usable candidate within {radius_m:g} m"
    unreach_mask = (~served) & ((~d_attached) | ~coverable)

    if exact:
        sol = mclp_exact(A, w_open, new, time_limit_s=time_limit_s)
    else:
        sol = mclp_greedy(A, w_open, new)
    ls = None
    if with_lscp:
        open_rows = np.flatnonzero((w_open > 0) & coverable)
        ls, _ = lscp(A[open_rows], time_limit_s=time_limit_s, exact=exact)

    sel = np.asarray(sol.selected, np.int64)
    sites = cand.iloc[sel][["name", "geometry"]].copy().reset_index(drop=True)
    sites["facility_kind"] = kind
    sites["rank"] = np.arange(1, len(sel) + 1)
    sites["gain"] = np.round(sol.gains, 1)
    sites["households"] = np.round(sol.gains, 1) if use_res else np.nan
    sites["street_m"] = np.nan if use_res else np.round(sol.gains, 1)
    sites["grid_code"] = assign_grid(sites, grids).to_numpy() if grids is not None and len(grids) else None
    sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=crs)
    if ls is not None:
        lsel = np.asarray(ls.selected, np.int64)
        cand["lscp"] = False
        cand.loc[lsel, "lscp"] = True
    unreachable = demand.loc[unreach_mask, ["name", "weight", "geometry"]].copy()
    unreachable["reason"] = reason[unreach_mask]
    unreachable = gpd.GeoDataFrame(unreachable, geometry="geometry", crs=crs).reset_index(drop=True)
    unit = "户 households" if use_res else "米街道 m of street"
    total_open = float(w_open.sum())
    summary = {
        "facility_kind": kind, "radius_m": float(radius_m), "method": "euclidean" if euclidean else "network",
        "demand_unit": unit, "demand_total": float(dw.sum()), "demand_served_now": float(dw[served].sum()),
        "demand_open": total_open, "newly_served": sol.objective,
        "newly_served_pct": round(100 * sol.objective / total_open, 1) if total_open else 0.0,
        "bound": sol.bound, "gap_pct": round(100 * sol.gap, 3), "status": sol.status, "solver": sol.method,
        "candidates": int(len(cand)), "candidates_usable": int(ok_c.sum()),
        "unreachable": float(dw[unreach_mask].sum()), "seconds": round(time.perf_counter() - t0, 3),
    }
    if ls is not None:
        summary.update({"lscp_sites": int(ls.objective), "lscp_lower_bound": int(ls.bound), "lscp_status": ls.status})
    params = {"facility_kind": kind, "radius_m": float(radius_m), "source": source, "new": int(new),
              "method": summary["method"], "solver": sol.method, "candidate_spacing_m": float(candidate_spacing_m),
              "min_distance_to_existing_m": float(min_distance_to_existing_m),
              "date": datetime.now().isoformat(timespec="seconds")}
    return SitingResult(sites=sites, candidates=cand, unreachable=unreachable, solution=sol, lscp=ls,
                        summary=summary, params=params)
