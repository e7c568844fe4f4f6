"""Default-geocode piles: many records on one point, found in linear time.

A geocoder that cannot place an address puts it on a default point (the city hall, a district's
centre, the map's centre), so a real export can hold tens of thousands of reports on one
coordinate. A **pile** is ``min_count`` or more records within ``tolerance_m`` metres of one point,
the pile's *centre*: the coordinate most records share. One rule for the import check
(:mod:`layers.validation`), the hotspots and the rebounds (:mod:`geo.hotspots`, :mod:`geo.rebound`),
with the thresholds of ``[piles]`` in the settings.

How (linear: sorting and hashing, no pairs)
-------------------------------------------
1. Records on the same millimetre are one weighted point (a pile of 20 000 becomes one point).
2. The points are hashed to square cells of side ``tolerance_m``; a point within ``tolerance_m``
   of a centre lies in the centre's cell or one of its 8 neighbours.
3. A cell whose 3 × 3 block holds fewer than ``min_count`` records cannot hold a centre. In the
   others the heaviest point is a candidate centre; the exact distance to it is checked for the
   points of the block only.
4. Candidates are taken heaviest first; each record joins the first pile that reaches it, so piles
   never overlap and a stray point beside a pile never becomes a centre of its own.

Coordinates in metres (a projected CRS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Piles:
    """Piles among ``n`` points.

    Attributes
    ----------
    label
        Per point: the pile it belongs to (0 = the largest) or -1.
    centre
        ``(k, 2)`` coordinates of each pile's centre, in the input's CRS (metres).
    count
        Records per pile, largest first.
    """

    label: np.ndarray
    centre: np.ndarray
    count: np.ndarray

    @property
    def in_pile(self) -> np.ndarray:
        return self.label >= 0

    def __len__(self) -> int:
        return len(self.count)


def find_piles(xy: np.ndarray, *, min_count: int, tolerance_m: float,
               origin: tuple[float, float] | None = None) -> Piles:
    """Piles of ``min_count`` or more points within ``tolerance_m`` metres of one point.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates in metres; rows with NaN are never in a pile.
    min_count
        Smallest pile.
    tolerance_m
        Distance from the pile's centre (0: only identical coordinates).
    origin
        Lower-left corner of the millimetre grid and of the cells (default: the points' minimum
        ``x`` and ``y``). The result depends on it only through those lattices, so points cut from
        a larger set (a spatial partition, :mod:`geo.partitioned`) give that set's piles when they
        are found with its origin.
    """
    xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
    n = len(xy)
    label = np.full(n, -1, dtype="int64")
    ok = np.flatnonzero(np.isfinite(xy).all(axis=1))
    if len(ok) < min_count:
        return Piles(label, np.empty((0, 2)), np.empty(0, dtype="int64"))
    pts = xy[ok]
    base = pts.min(axis=0) if origin is None else np.asarray(origin, dtype="float64")
    mm = np.round((pts - base) * 1000.0).astype("int64") if tolerance_m > 0 else None
    key = mm if mm is not None else pts
    u_idx, inv, w = _unique_rows(key)
    u = pts[u_idx]
    if tolerance_m <= 0:
        big = np.flatnonzero(w >= min_count)
        big = big[np.argsort(-w[big], kind="stable")]
        ulab = np.full(len(u), -1, dtype="int64")
        ulab[big] = np.arange(len(big))
        label[ok] = ulab[inv]
        return Piles(label, u[big], w[big].astype("int64"))
    cell = np.floor((u - base) / tolerance_m).astype("int64") + 1  # ≥ 1 (u ≥ base): neighbours stay ≥ 0
    width = int(cell[:, 1].max()) + 2
    ckey = cell[:, 0] * width + cell[:, 1]
    order = np.argsort(ckey, kind="stable")
    skey = ckey[order]
    cells, start, per_cell = np.unique(skey, return_index=True, return_counts=True)
    cweight = np.add.reduceat(w[order], start)
    offsets = np.array([di * width + dj for di in (-1, 0, 1) for dj in (-1, 0, 1)], dtype="int64")
    # records in each cell's 3 × 3 block: an upper bound on any pile centred in it
    bound = np.zeros(len(cells), dtype="int64")
    for off in offsets:
        j = np.searchsorted(cells, cells + off)
        hit = (j < len(cells)) & (cells[np.minimum(j, len(cells) - 1)] == cells + off)
        bound[hit] += cweight[j[hit]]
    cand_cells = np.flatnonzero(bound >= min_count)
    if not len(cand_cells):
        return Piles(label, np.empty((0, 2)), np.empty(0, dtype="int64"))
    # the heaviest point of each candidate cell is its candidate centre
    heavy = np.empty(len(cand_cells), dtype="int64")
    for k, c in enumerate(cand_cells):
        members = order[start[c]:start[c] + per_cell[c]]
        heavy[k] = members[np.argmax(w[members])]
    rank = np.lexsort((-bound[cand_cells], -w[heavy]))
    ulab = np.full(len(u), -1, dtype="int64")
    centres: list[np.ndarray] = []
    counts: list[int] = []
    tol2 = tolerance_m * tolerance_m
    for k in rank:
        c = cand_cells[k]
        centre = u[heavy[k]]
        block = []
        for off in offsets:
            j = int(np.searchsorted(cells, cells[c] + off))
            if j < len(cells) and cells[j] == cells[c] + off:
                block.append(order[start[j]:start[j] + per_cell[j]])
        near = np.concatenate(block)
        near = near[ulab[near] < 0]
        near = near[((u[near] - centre) ** 2).sum(axis=1) <= tol2]
        total = int(w[near].sum())
        if total >= min_count:
            ulab[near] = len(counts)
            centres.append(centre)
            counts.append(total)
    if not counts:
        return Piles(label, np.empty((0, 2)), np.empty(0, dtype="int64"))
    count = np.asarray(counts, dtype="int64")
    by_size = np.argsort(-count, kind="stable")
    renumber = np.full(len(count) + 1, -1, dtype="int64")
    renumber[by_size] = np.arange(len(count))
    label[ok] = renumber[ulab[inv]]
    return Piles(label, np.asarray(centres)[by_size], count[by_size])


def _unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First index, inverse and count of each distinct row of an ``(n, 2)`` array."""
    span = (a.max(axis=0) - a.min(axis=0)).astype("float64") + 1 if len(a) else np.ones(2)
    if a.dtype.kind == "i" and span[0] * span[1] < 2.0**62:
        k = (a[:, 0] - a[:, 0].min()) * (int(a[:, 1].max() - a[:, 1].min()) + 1) + (a[:, 1] - a[:, 1].min())
        _, first, inv, cnt = np.unique(k, return_index=True, return_inverse=True, return_counts=True)
    else:
        _, first, inv, cnt = np.unique(a, axis=0, return_index=True, return_inverse=True, return_counts=True)
    return first, inv.ravel(), cnt
