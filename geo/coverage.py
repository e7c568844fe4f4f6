"""Service areas and coverage gaps of a facility kind, measured along the streets (or straight line).

All inputs and outputs are in the project's projected CRS, in metres. The network distance is the
default; ``euclidean=True`` measures straight lines instead (for a county without street data).

Main pieces
-----------
:func:`service_areas`      per-facility and dissolved polygons around the reachable street parts
:func:`edge_parts`         covered / uncovered parts of every edge, cut at the exact cut-off point
:func:`coverage`           everything a planner asks for one facility kind (a :class:`CoverageResult`)
:func:`toilet_spacing`     stretches of busy / ordinary streets with too long a gap between toilets
:func:`toilet_class_check` toilets on main roads or at markets below the required class
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from sanigrid.geo._checks import projected, same_projected_crs
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.network import (
    Network,
    build_network,
    edge_reach,
    insert_points,
    nearest_distances,
    reach,
    snap_points,
    substrings,
)

log = logging.getLogger(__name__)

TOILET_CLASS_RANK = {"一类": 1, "二类": 2, "三类": 3, "旱厕": 4}


@dataclass(frozen=True)
class CoverageResult:
    """Everything :func:`coverage` computes for one facility kind.

    service_areas : one polygon per attached facility plus one dissolved row (``dissolved``).
    segments : every street/alley part, ``covered`` or not, cut at the cut-off point.
    gaps : the uncovered parts only (the ``coverage_gaps`` layer).
    demand : residential compounds with ``distance_m`` and ``covered`` (None without residents).
    grid_table : per grid: coverage %, uncovered length and households, distance statistics,
        ranked worst first.
    unattached : facilities and demand farther than ``max_snap_m`` from any street.
    summary : headline figures; params : the settings that produced the result.
    """

    service_areas: gpd.GeoDataFrame
    segments: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame | None
    grid_table: pd.DataFrame
    unattached: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ polygons
def _reach_parts(network: Network, k: np.ndarray, node: np.ndarray, dist: np.ndarray, *, radius_m: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source, edge, start, end) of every reached part of every edge, per source (metres along edges)."""
    if "incidence" in network.__dict__:
        inc = network.incidence
    else:  # only the edges at reached nodes matter: a small incidence matrix instead of the whole one
        reached = np.zeros(network.n_nodes, bool)
        reached[node] = True
        ei = np.flatnonzero(reached[network.u] | reached[network.v])
        inc = sparse.csr_matrix((np.r_[np.ones(len(ei)), np.full(len(ei), 2.0)],
                                 (np.r_[network.u[ei], network.v[ei]], np.r_[ei, ei])),
                                shape=(network.n_nodes, network.n_edges))
    deg = np.diff(inc.indptr)
    cnt = deg[node]
    rep = np.repeat(np.arange(len(node)), cnt)
    starts = np.repeat(inc.indptr[node], cnt)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pos = starts + within
    edge, side = inc.indices[pos], inc.data[pos]
    kk, left = k[rep], radius_m - dist[rep]
    L = network.length[edge]
    # self loops: both ends at one node → counted from both sides
    loop = network.u[edge] == network.v[edge]
    if loop.any():
        edge = np.r_[edge, edge[loop]]
        kk = np.r_[kk, kk[loop]]
        left = np.r_[left, left[loop]]
        side = np.r_[side, 3 - side[loop]]
        L = network.length[edge]
    amount = np.clip(left, 0, L)
    a = np.where(side == 1, amount, 0.0)
    b = np.where(side == 2, amount, 0.0)
    key = kk * (network.n_edges + 1) + edge
    uk, inv = np.unique(key, return_inverse=True)
    A = np.zeros(len(uk))
    B = np.zeros(len(uk))
    np.maximum.at(A, inv, a)
    np.maximum.at(B, inv, b)
    src, e = uk // (network.n_edges + 1), uk % (network.n_edges + 1)
    Le = network.length[e]
    full = A + B >= Le
    s1, e1 = np.zeros(len(uk)), np.where(full, Le, A)
    p2 = ~full & (B > 0)
    out_src = np.r_[src, src[p2]]
    out_edge = np.r_[e, e[p2]]
    out_s = np.r_[s1, Le[p2] - B[p2]]
    out_e = np.r_[e1, Le[p2]]
    ok = out_e - out_s > 1e-9
    return out_src[ok], out_edge[ok], out_s[ok], out_e[ok]


def _threaded(func: Any, arr: np.ndarray, workers: int) -> np.ndarray:
    """Apply a vectorised shapely function in chunks on threads (GEOS releases the GIL)."""
    chunks = min(workers * 4, len(arr) // 500)  # a thread per few dozen buffers costs more than it saves
    if workers <= 1 or chunks < 2:
        return func(arr)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as ex:
        return np.concatenate(list(ex.map(func, np.array_split(arr, chunks))))


def _workers(workers: int | None) -> int:
    return max(1, min(4, os.cpu_count() or 1)) if workers is None else max(1, int(workers))


_SCALE = 1e6  # Clipper works on integers: micrometres from each group's corner


def _union_groups(pieces: np.ndarray, groups: np.ndarray, n_groups: int, *, workers: int = 1) -> np.ndarray:
    """Per group, the union of its polygons (None for a group without pieces); see :func:`_union_rings`."""
    xy, sizes, of = _rings(pieces)
    return _union_rings(xy, sizes, groups[of], n_groups, workers=workers)


def _rings(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings of (Multi)Polygons, shells counter-clockwise and holes clockwise, for :func:`_union_rings`:
    ``(xy, sizes, piece)``, the vertices one ring after the other (not closed), and each ring's piece."""
    if not len(pieces):
        return np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    polygons, of = shapely.get_parts(pieces, return_index=True)
    polygons = shapely.orient_polygons(polygons)
    rings, ring_part = shapely.get_rings(polygons, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    inner = np.ones(len(xy), bool)  # closing vertices dropped
    inner[np.searchsorted(ring_of, np.arange(1, len(rings) + 1)) - 1] = False
    return xy[inner], np.bincount(ring_of[inner], minlength=len(rings)), of[ring_part]


def _union_rings(xy: np.ndarray, sizes: np.ndarray, ring_group: np.ndarray, n_groups: int, *, workers: int = 1
                 ) -> np.ndarray:
    """Per group, the union (non-zero winding) of its rings, as a (Multi)Polygon (None for a group without rings).

    ``xy`` holds the rings' vertices one after the other (``sizes`` of them each, not closed), ``ring_group``
    the group of each ring. The overlay is Clipper's (integer coordinates, micrometres), several times
    faster than GEOS on the many overlapping bands of a dense street network. Its output is only weakly
    simple (asking for strictly simple polygons costs a third more): every result is checked, and the few
    that GEOS finds invalid (a ring touching itself) are repaired by GEOS, the area kept.
    """
    import pyclipper

    out = np.full(n_groups, None, dtype=object)
    keep = sizes >= 3
    if not keep.any():
        return out
    starts = np.r_[0, np.cumsum(sizes)]
    if not keep.all():
        take = np.repeat(keep, sizes)
        xy, sizes, ring_group = xy[take], sizes[keep], ring_group[keep]
        starts = np.r_[0, np.cumsum(sizes)]
    pg = np.repeat(ring_group, sizes)
    # integer paths for Clipper, all at once: micrometres from each group's corner
    origin = np.full((n_groups, 2), np.inf)
    np.minimum.at(origin, pg, xy)
    origin = np.floor(origin)
    ints = np.round((xy - origin[pg]) * _SCALE).astype(np.int64)
    # Clipper's paths in and out are Python lists, hundreds of thousands of small ones: the cyclic garbage
    # collector would scan the whole heap many times over while they are built (most of the time here)
    paused = gc.isenabled()
    gc.disable()
    try:
        flat = ints.tolist()  # one conversion; the paths are slices of it
        paths = [flat[a:b] for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]
        o = np.argsort(ring_group, kind="stable")
        gs = ring_group[o]
        cut = np.r_[0, np.flatnonzero(np.diff(gs)) + 1, len(gs)]
        jobs = [(int(gs[i]), [paths[r] for r in o[i:j]]) for i, j in zip(cut[:-1], cut[1:], strict=True)]

        def union(job: tuple[int, list[Any]]) -> tuple[int, Any]:
            pc = pyclipper.Pyclipper()
            pc.AddPaths(job[1], pyclipper.PT_SUBJECT, True)
            return job[0], pc.Execute2(pyclipper.CT_UNION, pyclipper.PFT_NONZERO, pyclipper.PFT_NONZERO)

        if workers > 1 and len(jobs) > 1:  # Clipper's Execute releases the GIL
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as ex:
                trees = list(ex.map(union, jobs))
        else:
            trees = [union(j) for j in jobs]
        rings_out: list[Any] = []  # every result ring (shell, then its holes), its polygon and the polygon's group
        ring_poly: list[int] = []
        poly_group: list[int] = []
        for g, tree in trees:
            stack = list(tree.Childs)
            while stack:
                shell = stack.pop()
                k = len(poly_group)
                poly_group.append(g)
                rings_out.append(shell.Contour)
                holes = shell.Childs
                rings_out.extend(h.Contour for h in holes)
                ring_poly.extend([k] * (1 + len(holes)))
                for h in holes:
                    stack.extend(h.Childs)
        if not rings_out:
            return out
        rsizes = np.fromiter((len(r) for r in rings_out), np.int64, len(rings_out))
        coords = np.fromiter(chain.from_iterable(chain.from_iterable(rings_out)), np.int64,
                             2 * int(rsizes.sum())).reshape(-1, 2)
        del flat, paths, jobs, trees, rings_out  # freed before the collector is back
    finally:
        if paused:
            gc.enable()
    rid = np.repeat(np.arange(len(rsizes)), rsizes)
    pgroup = np.asarray(poly_group, np.int64)
    rpoly = np.asarray(ring_poly, np.int64)
    xy_out = coords / _SCALE + origin[pgroup[rpoly[rid]]]
    polys = shapely.polygons(shapely.linearrings(xy_out, indices=rid), indices=rpoly)
    single = np.bincount(pgroup, minlength=n_groups) == 1
    first = np.r_[True, pgroup[1:] != pgroup[:-1]]  # polygons come out group by group
    one = single[pgroup] & first
    out[pgroup[one]] = polys[one]
    many = ~single[pgroup]
    if many.any():
        multi_groups, idx = np.unique(pgroup[many], return_inverse=True)
        out[multi_groups] = shapely.multipolygons(polys[many], indices=idx)
    have = np.flatnonzero(~shapely.is_missing(out))
    bad = have[~shapely.is_valid(out[have])]
    if len(bad):  # rare (6 of 500 on the 160² grid bench): a ring touching itself; repaired, not redone
        fixed = shapely.make_valid(out[bad], method="structure")
        out[bad] = [_polygonal(f) for f in fixed]
    return out


def _polygonal(g: Any) -> Any:
    parts = shapely.get_parts(g)
    parts = parts[shapely.get_type_id(parts) == 3]
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _band_rings(lines: np.ndarray, rounded: np.ndarray, half_width: float, quad_segs: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outline of each line's band, built in numpy (no GEOS buffer): ``half_width`` each side, round joins,
    round caps where ``rounded`` (else flat), ``quad_segs`` segments a quarter circle as in ``shapely.buffer``.

    Each outline is one counter-clockwise ring: the right side forward, the end cap, the left side back,
    the start cap. At a bend, the outer side gets an arc of points on the circle around the vertex (chords
    inside it), the inner side the intersection of the two offset segments where it lies on both, else the
    vertex itself between the two segments' offset ends. Counting windings, the ring then bounds the union
    of the segments' rectangles, the joins' sectors and the caps' half discs (all with their vertices on the
    circles: never more than ``half_width`` from the line); Clipper fills it by non-zero winding.

    Returns ``(xy, line, sizes, loops)``: the rings' vertices one after the other (not closed), the line of
    each ring (lines without a segment of positive length have none), the rings' vertex counts, and per
    ring whether GEOS had better draw that band: the ring has the vertex itself on an inner side (a small
    loop there, which the overlay pays for), or the line is closed (GEOS joins its ends, here they are
    two flat caps).
    """
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    if not len(xy):
        return np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    # repeated vertices dropped; lines left with one vertex dropped
    same = np.r_[False, idx[1:] == idx[:-1]]
    step = np.r_[np.inf, np.hypot(*(xy[1:] - xy[:-1]).T)]
    keep = ~same | (step > 1e-9)
    xy, idx = xy[keep], idx[keep]
    first = np.r_[True, idx[1:] != idx[:-1]]
    last = np.r_[idx[1:] != idx[:-1], True]
    v = ~(first & last)
    xy, idx, first, last = xy[v], idx[v], first[v], last[v]
    if not len(xy):
        return np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    b = float(half_width)
    # the segments: vertex i → i + 1 within a line; at each vertex the incoming (a) and outgoing (b) one
    si = np.flatnonzero(~last)
    d = xy[si + 1] - xy[si]
    seg_len = np.hypot(d[:, 0], d[:, 1])
    d /= seg_len[:, None]
    seg_at = np.full(len(xy), -1, np.int64)
    seg_at[si] = np.arange(len(si))
    sb = np.where(last, np.r_[-1, seg_at[:-1]], seg_at)  # outgoing segment; at a line's end its last one
    sa = np.where(first, seg_at, np.r_[-1, seg_at[:-1]])  # incoming segment; at a line's start its first one
    da, db = d[sa], d[sb]
    na = np.c_[-da[:, 1], da[:, 0]]  # left normals
    nb = np.c_[-db[:, 1], db[:, 0]]
    dot = (da * db).sum(1)
    theta = np.arctan2(da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0], dot)  # turn at each vertex, + = left
    inner = ~first & ~last
    bend = inner & (np.abs(theta) > 1e-9)
    straight = inner & ~bend
    left_turn, right_turn = bend & (theta > 0), bend & (theta < 0)
    # the inner side's two offset segments meet t from the vertex along both: usable when that lies on both
    # segments, with the trims at both ends of a segment (on that side) fitting in its length
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.where(bend & (np.abs(theta) < 0.9 * np.pi), b * np.tan(np.abs(theta) / 2), np.inf)
    miter_ok = np.zeros(len(xy), bool)
    for side in (right_turn, left_turn):  # the inner side is the right one at a right turn
        trim = np.where(side, t, 0.0)
        fits = trim[si] + trim[si + 1] <= seg_len  # per segment
        miter_ok |= side & np.isfinite(t) & fits[sa] & fits[sb]
    ang_na, ang_nb = np.arctan2(na[:, 1], na[:, 0]), np.arctan2(nb[:, 1], nb[:, 0])
    q = np.pi / (2 * quad_segs)
    n_arc = np.maximum(1, np.floor(np.abs(theta) / q + 0.5)).astype(np.int64)  # as GEOS rounds its fillets
    # ---- slots in ring order: per line its vertices on the right side, the end cap, its vertices on the
    # left side backwards, the start cap; each slot gets its points, then all land at their places at once
    line_first = np.flatnonzero(first)
    nv = np.diff(np.r_[line_first, len(xy)])
    base = np.r_[0, np.cumsum(2 * nv + 2)[:-1]]
    pos = np.arange(len(xy)) - np.repeat(line_first, nv)
    lb, lnv = np.repeat(base, nv), np.repeat(nv, nv)
    slot_r = lb + pos
    slot_l = lb + 2 * lnv - pos
    slot_end, slot_start = base + nv, base + 2 * nv + 1
    slots: list[np.ndarray] = []
    subs: list[np.ndarray] = []
    pts: list[np.ndarray] = []

    def put(slot: np.ndarray, sub: Any, p: np.ndarray) -> None:
        slots.append(slot)
        subs.append(np.broadcast_to(np.asarray(sub, np.int64), slot.shape))
        pts.append(p)

    def arc(slot: np.ndarray, centre: np.ndarray, a0: np.ndarray, sweep: np.ndarray, steps: np.ndarray,
            m0: int, m1: np.ndarray) -> None:  # points m0 … m1 of an arc of ``steps`` segments
        cnt = m1 - m0 + 1
        rep = np.repeat(np.arange(len(slot)), cnt)
        sub = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ang = a0[rep] + sweep[rep] * (m0 + sub) / steps[rep]
        put(slot[rep], sub, centre[rep] + b * np.c_[np.cos(ang), np.sin(ang)])

    P = xy
    ends = first | last
    put(slot_r[ends], 0, P[ends] - np.where(first[:, None], nb, na)[ends] * b)
    put(slot_l[ends], 0, P[ends] + np.where(first[:, None], nb, na)[ends] * b)
    put(slot_r[straight], 0, P[straight] - na[straight] * b)
    put(slot_l[straight], 0, P[straight] + na[straight] * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        miter = (na + nb) * (b / (1 + dot))[:, None]
    w = right_turn & miter_ok
    put(slot_r[w], 0, P[w] - miter[w])
    w = left_turn & miter_ok
    put(slot_l[w], 0, P[w] + miter[w])
    w = right_turn & ~miter_ok  # inner side, no usable intersection: offset end, the vertex, offset start
    for j, p in enumerate((P[w] - na[w] * b, P[w], P[w] - nb[w] * b)):
        put(slot_r[w], j, p)
    w = left_turn & ~miter_ok  # (the left side runs backwards)
    for j, p in enumerate((P[w] + nb[w] * b, P[w], P[w] + na[w] * b)):
        put(slot_l[w], j, p)
    w = left_turn  # outer side on the right: from −na turning by θ to −nb
    arc(slot_r[w], P[w], ang_na[w] + np.pi, theta[w], n_arc[w], 0, n_arc[w])
    w = right_turn  # outer side on the left (backwards): from nb turning by −θ to na
    arc(slot_l[w], P[w], ang_nb[w], -theta[w], n_arc[w], 0, n_arc[w])
    rl = np.asarray(rounded, bool)[idx[line_first]]
    if rl.any():  # half discs, their inner points (the ends are the sides' ends)
        e, s = np.flatnonzero(last)[rl], line_first[rl]
        half, steps = np.full(len(e), np.pi), np.full(len(e), 2 * quad_segs)
        arc(slot_end[rl], P[e], ang_na[e] + np.pi, half, steps, 1, steps - 1)
        arc(slot_start[rl], P[s], ang_nb[s], half, steps, 1, steps - 1)
    slot = np.concatenate(slots)
    counts = np.bincount(slot, minlength=int(base[-1] + 2 * nv[-1] + 2))
    at = np.r_[0, np.cumsum(counts)[:-1]]
    out = np.empty((len(slot), 2))
    out[at[slot] + np.concatenate(subs)] = np.concatenate(pts)
    loops = np.bincount(np.repeat(np.arange(len(line_first)), nv), weights=bend & ~miter_ok,
                        minlength=len(line_first)) > 0
    loops |= (xy[line_first] == xy[np.flatnonzero(last)]).all(axis=1)
    return out, idx[line_first], np.add.reduceat(counts, base), loops


def _disc_rings(centres: np.ndarray, radius: float, quad_segs: int) -> tuple[np.ndarray, np.ndarray]:
    """Counter-clockwise polygons of 4·``quad_segs`` vertices on the circle around each centre (as
    ``shapely.buffer`` of a point): ``(xy, sizes)`` as :func:`_band_rings` returns them."""
    n = 4 * quad_segs
    ang = np.arange(n) * (2 * np.pi / n)
    ring = radius * np.c_[np.cos(ang), np.sin(ang)]
    return (centres[:, None, :] + ring[None]).reshape(-1, 2), np.full(len(centres), n, np.int64)


def _disc_needed(network: Network, buffer_m: float) -> np.ndarray:
    """Per node: whether a disc of ``buffer_m`` there adds anything to the flat-capped bands of its edges.

    A point within ``buffer_m`` of a node lies in the band of an edge whose first segment leaves the node
    within 90° of the point's direction, if that segment is at least ``buffer_m`` long. So the disc is
    covered when no two neighbouring edges around the node are more than 180° apart and every first segment
    is that long (a street crossing or passing straight through); it is needed at dead ends, bends and
    corners, and next to short segments.
    """
    need = np.ones(network.n_nodes, bool)
    if network.n_edges == 0:
        return need
    ang, seg = network.end_directions
    node = np.r_[network.u, network.v]
    order = np.lexsort((ang, node))
    nd, a, sl = node[order], ang[order], seg[order]
    start = np.r_[0, np.flatnonzero(np.diff(nd)) + 1]
    last = np.r_[start[1:], len(nd)] - 1
    gaps = np.r_[np.diff(a), 0.0]
    gaps[last] = 2 * np.pi - (a[last] - a[start])
    maxgap = np.maximum.reduceat(gaps, start)
    minseg = np.minimum.reduceat(sl, start)
    need[nd[start]] = (maxgap > np.pi + 1e-6) | (minseg < buffer_m)
    return need


def _around(network: Network, node: np.ndarray) -> tuple[Network, np.ndarray]:
    """The edges at the given nodes, as a network of their own (node ids kept), and their ids.

    A network with facilities inserted is new at every call: the per-end properties
    (:attr:`Network.end_directions`, :attr:`Network.straight_partner`) are computed for the reached
    neighbourhood only, not for the whole network (they depend only on the edges at each node).
    """
    at = np.zeros(network.n_nodes, bool)
    at[node] = True
    ei = np.flatnonzero(at[network.u] | at[network.v])
    sub = Network(nodes=network.nodes, u=network.u[ei], v=network.v[ei], length=network.length[ei],
                  geometry=network.geometry[ei], line=network.line[ei], lines=network.lines, crs=network.crs)
    return sub, ei


def _partner_of(network: Network, sub: Network, ei: np.ndarray) -> np.ndarray:
    """:attr:`Network.straight_partner` of ``network`` at the ends of the edges ``ei`` (from ``sub``, the
    network of those edges alone; -1 elsewhere)."""
    m = network.n_edges
    full_end = np.r_[ei, m + ei]  # end j of sub (its u ends, then its v ends) → end of network
    out = np.full(2 * m, -1, np.int64)
    p = sub.straight_partner
    ok = p >= 0
    out[full_end[ok]] = full_end[p[ok]]
    return out


def _chains(network: Network, src: np.ndarray, edge: np.ndarray, s: np.ndarray, e: np.ndarray,
            parts: np.ndarray, room: Any, half_width: float, partner: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reached parts joined into long lines (one band each instead of one per part).

    Two parts of one source are joined where they meet at a node and continue each other
    (:attr:`Network.straight_partner`), if the node has only those two edges or ``room(source, node)``
    (the source's disc covers the node's surroundings, so a round join there adds nothing). A round join
    is therefore never drawn at a junction near the cut-off, where it could reach into an unreached street.

    Returns
    -------
    (lines, source of each line, round: whether both ends of the line are nodes with room, so that its band
    may have round caps (the discs there), held_source, held_node: the (source, node) pairs whose disc of
    ``half_width`` lies inside one of the source's bands).
    """
    n, m = len(parts), network.n_edges
    none = np.zeros(0, np.int64)
    if n == 0:
        return parts, src, np.zeros(0, bool), none, none
    L = network.length[edge]
    tu, tv = s == 0, e == L  # exact: the parts start at 0 and end at the edge's length when they touch a node
    pe = np.r_[np.flatnonzero(tu), np.flatnonzero(tv)]
    je = np.r_[edge[tu], m + edge[tv]]
    key = src[pe] * (2 * m) + je
    o = np.argsort(key)
    K, P = key[o], pe[o]
    pj = partner[je]
    pos = np.minimum(np.searchsorted(K, src[pe] * (2 * m) + pj), len(K) - 1)
    found = (pj >= 0) & (K[pos] == src[pe] * (2 * m) + pj)
    p, q, j = pe[found], P[pos[found]], je[found]
    keep = p < q
    p, q, j = p[keep], q[keep], j[keep]
    nodes = np.r_[network.u, network.v][j]
    deg = np.bincount(np.r_[network.u, network.v], minlength=network.n_nodes)
    ok = (deg[nodes] == 2) | room(src[p], nodes)
    p, q, nodes = p[ok], q[ok], nodes[ok]
    p_end = p + n * (j[ok] >= m)  # endpoint ids: i = part i's start, n + i = its end (the edge's v end)
    q_end = q + n * (partner[j[ok]] >= m)
    _, label = csgraph.connected_components(sparse.coo_matrix((np.ones(len(p)), (p, q)), shape=(n, n)),
                                            directed=False)
    # line_merge joins wherever exactly two ends of a line meet: make sure those are the joins made above
    # (a chain whose two free ends meet at a node is left in its parts)
    xy, idx = shapely.get_coordinates(parts, return_index=True)
    first = np.searchsorted(idx, np.arange(n))
    ends = np.r_[first, np.r_[first[1:], len(xy)] - 1]  # start points, then end points
    linked = np.zeros(2 * n, bool)
    linked[np.r_[p_end, q_end]] = True
    lab = label[np.r_[np.arange(n), np.arange(n)]]
    ex, ey = xy[ends, 0], xy[ends, 1]
    order = np.lexsort((ey, ex, lab))
    same = (lab[order][1:] == lab[order][:-1]) & (ex[order][1:] == ex[order][:-1]) & (ey[order][1:] == ey[order][:-1])
    grp = np.r_[0, np.cumsum(~same)]
    size = np.bincount(grp)
    unlinked = np.bincount(grp, weights=(~linked[order]).astype(float))
    bad_groups = np.flatnonzero((size == 2) & (unlinked > 0))
    if len(bad_groups):
        bad = np.zeros(int(label.max()) + 1, bool)
        bad[lab[order][np.searchsorted(grp, bad_groups)]] = True
        alone = bad[label]
        label = label.copy()
        label[alone] = label.max() + 1 + np.arange(int(alone.sum()))
        inner = ~alone[p]
        p, nodes, p_end, q_end = p[inner], nodes[inner], p_end[inner], q_end[inner]
        linked[:] = False
        linked[np.r_[p_end, q_end]] = True
    o = np.argsort(label, kind="stable")
    lab_sorted = label[o]
    firsts = np.r_[True, lab_sorted[1:] != lab_sorted[:-1]]
    uniq = lab_sorted[firsts]
    lines = np.asarray(shapely.line_merge(shapely.multilinestrings(parts[o], indices=np.cumsum(firsts) - 1)),
                       dtype=object)
    # the free ends of each line: a node with room for the source (a disc is drawn there anyway), or not
    end_node = np.r_[np.where(tu, network.u[edge], -1), np.where(tv, network.v[edge], -1)]
    end_src = np.r_[src, src]
    free = np.flatnonzero(~linked)
    roomy = np.zeros(len(free), bool)
    at = end_node[free] >= 0
    roomy[at] = room(end_src[free][at], end_node[free][at])
    line_of_end = np.searchsorted(uniq, lab[free])
    stiff = np.bincount(line_of_end, weights=(~roomy).astype(float), minlength=len(lines))
    single = shapely.get_type_id(lines) == 1
    rounded = (stiff == 0) & single
    # discs inside a band: at the nodes of a line with round caps (its band is the whole neighbourhood of
    # the line); at an inner node of any other line when both its ends are farther than twice the
    # half-width (a point of the disc is then nearer to the line's inside than to an end, so in the band)
    line_of = np.searchsorted(uniq, label[p])
    held = rounded[line_of].copy()
    rest = np.flatnonzero(~held & single[line_of])
    if len(rest):
        xy_n = network.nodes[nodes[rest]]
        a = shapely.get_coordinates(shapely.get_point(lines[line_of[rest]], 0))
        b = shapely.get_coordinates(shapely.get_point(lines[line_of[rest]], -1))
        held[rest] = (np.hypot(*(a - xy_n).T) > 2 * half_width) & (np.hypot(*(b - xy_n).T) > 2 * half_width)
    capped = roomy & rounded[line_of_end]
    held_src = np.r_[src[p][held], end_src[free][capped]]
    held_node = np.r_[nodes[held], end_node[free][capped]]
    return lines, src[o][firsts], rounded, held_src, held_node


def service_areas(network: Network, facility_nodes: np.ndarray, *, radius_m: float, buffer_m: float,
                  dissolve: bool = True, quad_segs: int = 2, workers: int | None = None
                  ) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """Service-area polygons that never extend past the reachable network.

    Each facility's area is a flat-capped buffer (``buffer_m`` metres each side) of the street
    parts it reaches within ``radius_m`` metres along the network, cut exactly at the cut-off
    point, united with discs at the junctions it reaches with at least ``buffer_m`` to spare
    (so corners are filled but no disc reaches past the cut-off along any street). Each area is
    one union of simple pieces (a band per line of parts joined straight on, a disc per junction
    where the bands leave a gap): one buffer of all the parts at once costs GEOS far more where
    streets and footways run close together (it nodes every offset curve against every other
    one). The bands' outlines are built in numpy (:func:`_band_rings`; GEOS buffers the few
    with short segments at bends) and united by Clipper. The dissolved area is the union of the
    facilities' areas.

    Parameters
    ----------
    network : the network with the facilities inserted as nodes (:func:`geo.network.insert_points`).
    facility_nodes : node id of each facility (-1 = not attached: its polygon is None).
    quad_segs : segments per quarter circle of the round joins and discs (2: an octagon of 25 m
        radius departs from the circle by under 2 m, under 0.4 mm on a 1:5,000 print).
    workers : threads for the polygon step (GEOS and Clipper release the GIL); default: CPUs, at most 4.

    Returns
    -------
    (polygons, dissolved, stats) : one polygon (or None) per facility, their union (None when
    ``dissolve`` is False) and counts and seconds of the steps.
    """
    t0 = time.perf_counter()
    fac = np.asarray(facility_nodes, np.int64)
    k, node, dist = reach(network, fac, limit_m=radius_m)
    t1 = time.perf_counter()
    src, edge, s, e = _reach_parts(network, k, node, dist, radius_m=radius_m)
    parts = substrings(network.geometry[edge], s, e)
    t2 = time.perf_counter()
    n_workers = _workers(workers)
    has_room = radius_m - dist >= buffer_m
    N = np.int64(network.n_nodes)
    room_key = np.sort(k[has_room] * N + node[has_room])

    def room(sources: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        want = sources * N + nodes
        at = np.minimum(np.searchsorted(room_key, want), max(len(room_key) - 1, 0))
        return room_key[at] == want if len(room_key) else np.zeros(len(want), bool)

    sub, ei = _around(network, node)
    partner = _partner_of(network, sub, ei)
    lines, line_src, rounded, via_src, via_node = _chains(network, src, edge, s, e, parts, room, buffer_m, partner)
    disc = has_room & _disc_needed(sub, buffer_m)[node]
    disc[disc] &= ~np.isin(k[disc] * N + node[disc], via_src * N + via_node)
    single, of = shapely.get_parts(lines, return_index=True)  # a line left in parts: flat bands
    bxy, bline, bsizes, loops = _band_rings(single, rounded[of], buffer_m, quad_segs)
    if loops.any():  # bands with little loops on an inner side (short segments at bends): GEOS's are simpler
        messy = bline[loops]
        drop = np.repeat(loops, bsizes)
        bxy, bline, bsizes = bxy[~drop], bline[~loops], bsizes[~loops]
        rr = rounded[of[messy]]
        gb = np.empty(len(messy), dtype=object)
        for cap, which in (("round", rr), ("flat", ~rr)):
            gb[which] = _threaded(lambda a, c=cap: shapely.buffer(a, buffer_m, quad_segs=quad_segs, cap_style=c,
                                                                  join_style="round"), single[messy[which]], n_workers)
        gxy, gsizes, gof = _rings(gb)
        bxy, bline, bsizes = np.vstack([bxy, gxy]), np.r_[bline, messy[gof]], np.r_[bsizes, gsizes]
    dxy, dsizes = _disc_rings(network.nodes[node[disc]], buffer_m, quad_segs)
    polys = _union_rings(np.vstack([bxy, dxy]), np.r_[bsizes, dsizes], np.r_[line_src[of[bline]], k[disc]],
                         len(fac), workers=n_workers)
    t3 = time.perf_counter()
    dissolved = _dissolve(polys) if dissolve else None
    t4 = time.perf_counter()
    return polys, dissolved, {"reached_parts": len(parts), "reached_pairs": len(k), "bands": len(lines),
                              "discs": int(disc.sum()), "reach_s": t1 - t0,
                              "parts_s": t2 - t1, "polygons_s": t3 - t2, "dissolve_s": t4 - t3}


def _dissolve(polys: np.ndarray) -> Any:
    """Union of the polygons, overlaying only those that overlap (groups of intersecting ones).

    Polygons that touch no other are taken as they are; each group of intersecting polygons is
    united on its own (by the same overlay as the polygons); the results are assembled into one
    (Multi)Polygon.
    """
    have = np.flatnonzero([p is not None and not p.is_empty for p in polys])
    if len(have) == 0:
        return None
    g = np.asarray(polys[have], dtype=object)
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    keep = a < b
    n = len(g)
    adj = sparse.coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    ncomp, lab = csgraph.connected_components(adj, directed=False)
    alone = np.bincount(lab, minlength=ncomp)[lab] == 1
    pieces = list(g[alone])
    if (~alone).any():
        merged = _union_groups(g[~alone], lab[~alone], ncomp)
        pieces += [p for p in merged if p is not None]
    parts = shapely.get_parts(np.asarray(pieces, dtype=object))
    parts = parts[shapely.get_type_id(parts) == 3]  # polygons only
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _covered_intervals(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    full = a + b >= L
    idx = np.arange(len(L))
    e1 = np.where(full, L, a)
    p2 = ~full & (b > 0)
    edge = np.r_[idx, idx[p2]]
    s = np.r_[np.zeros(len(L)), L[p2] - b[p2]]
    e = np.r_[e1, L[p2]]
    ok = e - s > 1e-9
    return edge[ok], s[ok], e[ok]


def _farthest(du: np.ndarray, dv: np.ndarray, L: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Largest distance to the nearest facility over the part [s, e] of an edge (metres).

    Along the edge the distance is min(du + x, dv + L − x), highest where the two meet.
    """
    with np.errstate(invalid="ignore"):
        x = np.clip((dv + L - du) / 2, s, e)
        x = np.where(np.isfinite(du) & np.isfinite(dv), x, np.where(np.isfinite(du), e, s))
        return np.minimum(du + x, dv + L - x)


def edge_parts(network: Network, node_dist: np.ndarray, *, radius_m: float) -> gpd.GeoDataFrame:
    """Covered and uncovered parts of every edge, cut at the exact cut-off point.

    ``node_dist`` is the network distance (metres) of every node to its nearest facility.
    Returns a GeoDataFrame with ``edge``, ``line`` (source line), ``covered``, ``length_m`` and
    ``distance_m`` (the largest distance to the nearest facility within the part; ``inf`` when
    no facility can be reached at all), plus the source line's attributes.
    """
    L = network.length
    a, b = edge_reach(network, node_dist, radius_m=radius_m)
    ce, cs, cend = _covered_intervals(L, a, b)
    gap = a + b < L
    ge = np.flatnonzero(gap)
    gs, gend = a[gap], L[gap] - b[gap]
    gdist = _farthest(node_dist[network.u[ge]], node_dist[network.v[ge]], L[ge], gs, gend)
    cdist = np.minimum(_farthest(node_dist[network.u[ce]], node_dist[network.v[ce]], L[ce], cs, cend), radius_m)
    edge = np.r_[ce, ge]
    geoms = substrings(network.geometry[edge], np.r_[cs, gs], np.r_[cend, gend])
    attrs = network.lines.iloc[network.line[edge]].reset_index(drop=True)
    out = gpd.GeoDataFrame(attrs, geometry=geoms, crs=network.crs)
    out["edge"] = edge
    out["line"] = network.line[edge]
    out["covered"] = np.r_[np.ones(len(ce), bool), np.zeros(len(ge), bool)]
    out["length_m"] = np.r_[cend - cs, gend - gs]
    out["distance_m"] = np.r_[cdist, gdist]
    return out


# ------------------------------------------------------------------------------------ straight line
def _euclidean(network: Network, fac_xy: np.ndarray, *, radius_m: float, quad_segs: int = 16
               ) -> tuple[np.ndarray, Any, gpd.GeoDataFrame]:
    discs = shapely.buffer(shapely.points(fac_xy), radius_m, quad_segs=quad_segs)
    dissolved = shapely.union_all(discs) if len(discs) else shapely.Polygon()
    shapely.prepare(dissolved)
    cov = shapely.intersection(network.geometry, dissolved)
    unc = shapely.difference(network.geometry, dissolved)
    rows = []
    for flag, g in ((True, cov), (False, unc)):
        parts, idx = shapely.get_parts(g, return_index=True)
        parts = shapely.line_merge(parts) if len(parts) else parts
        parts, idx2 = shapely.get_parts(parts, return_index=True)
        idx = idx[idx2]
        keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1e-9)
        rows.append((flag, parts[keep], idx[keep]))
    edge = np.r_[rows[0][2], rows[1][2]].astype(np.int64)
    geoms = np.r_[rows[0][1], rows[1][1]]
    attrs = network.lines.iloc[network.line[edge]].reset_index(drop=True)
    out = gpd.GeoDataFrame(attrs, geometry=geoms, crs=network.crs)
    out["edge"], out["line"] = edge, network.line[edge]
    out["covered"] = np.r_[np.ones(len(rows[0][1]), bool), np.zeros(len(rows[1][1]), bool)]
    out["length_m"] = shapely.length(geoms)
    # farthest vertex of each part from its nearest facility
    if len(fac_xy) and len(geoms):
        xy, idx = shapely.get_coordinates(geoms, return_index=True)
        d, _ = cKDTree(fac_xy).query(xy)
        dist = np.zeros(len(geoms))
        np.maximum.at(dist, idx, d)
        out["distance_m"] = np.where(out["covered"], np.minimum(dist, radius_m), dist)
    else:
        out["distance_m"] = np.inf
    return discs, dissolved, out


# ------------------------------------------------------------------------------------ the analysis
def _points_xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    g = frame.geometry.to_numpy()
    nonpt = shapely.get_type_id(g) != 0
    if nonpt.any():
        g = g.copy()
        g[nonpt] = shapely.point_on_surface(g[nonpt])
    return shapely.get_coordinates(g)


def _households(residents: gpd.GeoDataFrame) -> np.ndarray:
    if "households" in residents.columns:
        h = pd.to_numeric(residents["households"], errors="coerce").astype("float64").to_numpy()
        return np.where(np.isnan(h), 1.0, h)
    return np.ones(len(residents))


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("<NA>", "nan") else str(v)


def _names(frame: gpd.GeoDataFrame, kind: str) -> list[str]:
    if "name" in frame.columns:
        names = frame["name"].astype("object").tolist()
    else:
        names = [None] * len(frame)
    return [str(n) if n is not None and not (isinstance(n, float) and np.isnan(n)) and str(n) not in ("", "<NA>")
            else f"{kind}#{i + 1}" for i, n in enumerate(names)]


def coverage(
    facilities: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    alleys: gpd.GeoDataFrame | None = None,
    *,
    kind: str,
    radius_m: float,
    residents: gpd.GeoDataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
    euclidean: bool = False,
    snap_tolerance_m: float = 1.0,
    max_snap_m: float = 200.0,
    buffer_m: float = 25.0,
    network: Network | None = None,
    source: str = "",
) -> CoverageResult:
    """Service areas, covered/uncovered streets, uncovered demand and a per-grid table.

    Parameters
    ----------
    facilities : points of one facility kind (markets may be polygons: their inside point is used).
    streets, alleys : the street lines; all layers in one projected CRS in metres.
    kind : facility kind name, written into the outputs.
    radius_m : service radius in metres (network distance, or straight line with ``euclidean``).
    residents : residential compounds (points or polygons) with ``households``; without them
        the uncovered street length is the demand proxy.
    grids : grid polygons with ``code`` for the per-grid table.
    max_snap_m : facilities/residents farther than this from a street are reported, not attached.
    buffer_m : half-width of the service-area polygons (metres).
    network : a network already built from the same streets (skips building it again).
    source : where the radius comes from (kept in ``params``).

    Returns
    -------
    CoverageResult
    """
    frames = [facilities, streets] + [f for f in (alleys, residents, grids) if f is not None and len(f)]
    same_projected_crs(*frames)
    if radius_m <= 0:
        raise AnalysisError(f"service radius must be positive metres, got {radius_m}; fix facilities.{kind}.radius_m")
    crs = streets.crs
    base = network if network is not None else build_network(streets, alleys, snap_tolerance_m=snap_tolerance_m)
    method = "euclidean" if euclidean else "network"
    names = _names(facilities, kind)
    fac_xy = _points_xy(facilities) if len(facilities) else np.zeros((0, 2))
    res = residents if residents is not None and len(residents) else None
    unattached = []

    if euclidean:
        polys, dissolved, segs = _euclidean(base, fac_xy, radius_m=radius_m)
        fac_ok = np.ones(len(facilities), bool)
        net = base
        if res is not None:
            rxy = _points_xy(res)
            rd = cKDTree(fac_xy).query(rxy)[0] if len(fac_xy) else np.full(len(res), np.inf)
            r_ok = np.ones(len(res), bool)
    else:
        pts = [facilities.geometry] + ([res.geometry] if res is not None else [])
        allpts = gpd.GeoSeries(pd.concat(pts, ignore_index=True), crs=crs)
        snaps = snap_points(base, allpts, max_snap_m=max_snap_m)
        net, nodes = insert_points(base, snaps)
        nf = len(facilities)
        fac_nodes = nodes[:nf]
        fac_ok = fac_nodes >= 0
        polys, dissolved, _ = service_areas(net, fac_nodes, radius_m=radius_m, buffer_m=buffer_m)
        dist, _ = nearest_distances(net, fac_nodes)
        segs = edge_parts(net, dist, radius_m=radius_m)
        far = f"离道路超过 {max_snap_m:g} 米 / farther than {max_snap_m:g} m from any street"
        for i in np.flatnonzero(~fac_ok):
            unattached.append({"layer": kind, "name": names[i], "row": int(i), "reason": far})
        if res is not None:
            rnodes = nodes[nf:]
            r_ok = rnodes >= 0
            rd = np.where(r_ok, dist[np.maximum(rnodes, 0)], np.inf)
            rnames = _names(res, "residents")
            for i in np.flatnonzero(~r_ok):
                unattached.append({"layer": "residents", "name": rnames[i], "row": int(i), "reason": far})
        # facilities on islands: say so
        comp = net.component
        for i in np.flatnonzero(fac_ok):
            c = int(comp[fac_nodes[i]])
            if c != 0:
                why = f"位于孤立路网分量 {c} / on network island {c}, not joined to the main network"
                unattached.append({"layer": kind, "name": names[i], "row": int(i), "reason": why})

    # ---- service-area layer: one row per facility, then the dissolved area
    rows = [{"facility_kind": kind, "facility": names[i], "radius_m": float(radius_m), "method": method,
             "dissolved": False, "geometry": polys[i]} for i in range(len(polys)) if polys[i] is not None]
    rows.append({"facility_kind": kind, "facility": "全部 all", "radius_m": float(radius_m), "method": method,
                 "dissolved": True, "geometry": dissolved if dissolved is not None else shapely.Polygon()})
    areas = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)

    # ---- segments and gaps
    segs = segs.copy()
    segs["facility_kind"] = kind
    if grids is not None and len(grids):
        segs["grid_code"] = assign_grid(segs, grids).to_numpy()
    else:
        segs["grid_code"] = None
    gaps = segs.loc[~segs["covered"], ["facility_kind", "name", "length_m", "distance_m", "grid_code", "layer",
                                       "road_class", "geometry"]].copy()
    gaps["distance_m"] = gaps["distance_m"].where(np.isfinite(gaps["distance_m"]), np.nan).round(1)
    gaps["length_m"] = gaps["length_m"].round(1)
    gaps = gaps.sort_values("length_m", ascending=False).reset_index(drop=True)

    # ---- demand
    demand = None
    if res is not None:
        demand = res.copy()
        demand["households"] = _households(res)
        demand["distance_m"] = np.where(np.isfinite(rd), np.round(rd, 1), np.nan)
        demand["covered"] = rd <= radius_m
        demand["attached"] = r_ok
        demand["grid_code"] = assign_grid(res, grids).to_numpy() if grids is not None and len(grids) else None

    # ---- per grid
    grid_table = _grid_table(segs, demand, grids)

    total = float(segs["length_m"].sum())
    covered_len = float(segs.loc[segs["covered"], "length_m"].sum())
    summary = {
        "facility_kind": kind, "method": method, "radius_m": float(radius_m),
        "facilities": int(len(facilities)), "attached": int(fac_ok.sum()),
        "street_km": round(total / 1000, 3), "covered_km": round(covered_len / 1000, 3),
        "uncovered_km": round((total - covered_len) / 1000, 3),
        "coverage_pct": round(100 * covered_len / total, 1) if total else 0.0,
        "components": int(net.component.max()) + 1 if net.n_nodes else 0,
    }
    if demand is not None:
        hh = demand["households"].to_numpy()
        summary["households"] = float(hh.sum())
        summary["households_uncovered"] = float(hh[~demand["covered"].to_numpy()].sum())
    params = {"facility_kind": kind, "radius_m": float(radius_m), "source": source, "method": method,
              "buffer_m": float(buffer_m), "max_snap_m": float(max_snap_m),
              "date": datetime.now().isoformat(timespec="seconds")}
    return CoverageResult(service_areas=areas, segments=segs, gaps=gaps, demand=demand, grid_table=grid_table,
                          unattached=pd.DataFrame(unattached, columns=["layer", "name", "row", "reason"]),
                          summary=summary, params=params)


def _grid_table(segs: gpd.GeoDataFrame, demand: gpd.GeoDataFrame | None, grids: gpd.GeoDataFrame | None
                ) -> pd.DataFrame:
    cols = ["grid_code", "street_m", "covered_m", "uncovered_m", "coverage_pct", "households",
            "households_uncovered", "dist_mean_m", "dist_median_m", "dist_max_m"]
    if grids is None or not len(grids):
        return pd.DataFrame(columns=cols)
    s = pd.DataFrame({"grid_code": segs["grid_code"].astype("object"), "len": segs["length_m"].to_numpy(),
                      "cov": np.where(segs["covered"], segs["length_m"], 0.0)})
    t = s.groupby("grid_code", dropna=True).agg(street_m=("len", "sum"), covered_m=("cov", "sum"))
    t = t.reindex(pd.Index(grids["code"].astype("object"), name="grid_code"), fill_value=0.0)
    t["uncovered_m"] = t["street_m"] - t["covered_m"]
    t["coverage_pct"] = np.where(t["street_m"] > 0, 100 * t["covered_m"] / t["street_m"].where(t["street_m"] > 0, 1),
                                 np.nan)
    if demand is not None:
        d = pd.DataFrame({"grid_code": demand["grid_code"].astype("object"), "hh": demand["households"],
                          "unc": np.where(demand["covered"], 0.0, demand["households"]),
                          "dist": demand["distance_m"].astype("float64")})
        h = d.groupby("grid_code", dropna=True).agg(households=("hh", "sum"), households_uncovered=("unc", "sum"),
                                                    dist_mean_m=("dist", "mean"), dist_median_m=("dist", "median"),
                                                    dist_max_m=("dist", "max"))
        t = t.join(h)
        t[["households", "households_uncovered"]] = t[["households", "households_uncovered"]].fillna(0.0)
    else:
        # without residents: distance statistics over the street parts (length-weighted would need more; use parts)
        dd = segs["distance_m"].astype("float64").where(np.isfinite(segs["distance_m"]))
        d = pd.DataFrame({"grid_code": segs["grid_code"].astype("object"), "dist": dd.to_numpy()})
        h = d.groupby("grid_code", dropna=True).agg(dist_mean_m=("dist", "mean"), dist_median_m=("dist", "median"),
                                                    dist_max_m=("dist", "max"))
        t = t.join(h)
        t["households"] = np.nan
        t["households_uncovered"] = np.nan
    t = t.reset_index()[cols]
    for c in cols[1:]:
        t[c] = t[c].astype("float64").round(1)
    t = t.sort_values(["coverage_pct", "households_uncovered", "uncovered_m"], ascending=[True, False, False],
                      na_position="last").reset_index(drop=True)
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t


# ------------------------------------------------------------------------------------ toilet checks
def toilet_spacing(
    toilets: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    *,
    busy_max_m: float,
    ordinary_max_m: float,
    near_m: float,
) -> gpd.GeoDataFrame:
    """Stretches of street where consecutive toilets are farther apart than allowed.

    Streets are merged by name (unnamed lines stay alone); toilets within ``near_m`` metres of a
    street are placed on it by projection. Busy streets (``busy`` true, 繁华街道) use
    ``busy_max_m``, the others ``ordinary_max_m``. A stretch runs between two consecutive toilets,
    or from a street end to the first/last toilet (a street with no toilet is one stretch).
    Returns the stretches longer than allowed, with ``length_m`` and ``max_m``; CRS in metres.
    """
    same_projected_crs(toilets, streets)
    cols = ["name", "busy", "length_m", "max_m", "from_toilet", "to_toilet"]
    if not len(streets):
        return gpd.GeoDataFrame(columns=[*cols, "geometry"], geometry="geometry", crs=streets.crs)
    st = streets.copy()
    st["busy"] = st["busy"].fillna(False).astype(bool) if "busy" in st.columns else False
    nm = st["name"].astype("object") if "name" in st.columns else pd.Series([None] * len(st), index=st.index)
    st["_key"] = [f"{n}|{b}" if n is not None and str(n) not in ("", "<NA>", "nan") else f"#{i}|{b}"
                  for i, (n, b) in enumerate(zip(nm, st["busy"], strict=True))]
    st["_name"] = nm.to_numpy()
    merged = st.dissolve("_key", aggfunc={"busy": "first", "_name": "first"})
    tnames = _names(toilets, "toilets")
    tpts = toilets.geometry.to_numpy()
    tree = shapely.STRtree(tpts) if len(tpts) else None
    out = []
    for _, row in merged.iterrows():
        geom = shapely.line_merge(row.geometry)
        limit = busy_max_m if row["busy"] else ordinary_max_m
        for part in shapely.get_parts(geom):
            L = part.length
            if L <= limit:
                continue
            idx = tree.query(part, predicate="dwithin", distance=near_m) if tree is not None else np.array([], int)
            pos = np.sort(shapely.line_locate_point(part, tpts[idx])) if len(idx) else np.array([])
            order = np.argsort(shapely.line_locate_point(part, tpts[idx])) if len(idx) else np.array([], int)
            stops = np.r_[0.0, pos, L]
            labels = ["路端 street end"] + [tnames[i] for i in np.asarray(idx)[order]] + ["路端 street end"]
            gaps = np.diff(stops)
            for j in np.flatnonzero(gaps > limit):
                out.append({"name": row["_name"], "busy": bool(row["busy"]), "length_m": round(float(gaps[j]), 1),
                            "max_m": float(limit), "from_toilet": labels[j], "to_toilet": labels[j + 1],
                            "geometry": substrings(np.array([part], dtype=object), np.array([stops[j]]),
                                                         np.array([stops[j + 1]]))[0]})
    return gpd.GeoDataFrame(out, columns=[*cols, "geometry"], geometry="geometry", crs=streets.crs)


def toilet_class_check(
    toilets: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    markets: gpd.GeoDataFrame | None = None,
    *,
    min_class: str,
    road_classes: list[str],
    near_m: float,
) -> pd.DataFrame:
    """Toilets on main roads or at markets whose class is below ``min_class`` (or not given).

    A toilet within ``near_m`` metres of a street whose ``road_class`` is in ``road_classes``,
    or of a market, must be ``min_class`` or better (一类 best). Returns one row per offending
    toilet with the reason; inputs in one projected CRS in metres.
    """
    projected(toilets, "toilets")
    cols = ["row", "name", "toilet_class", "required", "reason"]
    if not len(toilets):
        return pd.DataFrame(columns=cols)
    need = TOILET_CLASS_RANK[min_class]
    tnames = _names(toilets, "toilets")
    cls = toilets["toilet_class"].astype("object").tolist() if "toilet_class" in toilets.columns else [None] * len(
        toilets)
    reasons: dict[int, list[str]] = {}
    pts = toilets.geometry.to_numpy()
    if len(streets) and "road_class" in streets.columns:
        main = streets[streets["road_class"].isin(road_classes)]
        if len(main):
            same_projected_crs(toilets, main)
            ti, si = shapely.STRtree(main.geometry.to_numpy()).query(pts, predicate="dwithin", distance=near_m)
            mnames = main["name"].astype("object").tolist() if "name" in main.columns else [None] * len(main)
            for t, s in zip(ti, si, strict=True):
                label = f"{main['road_class'].iloc[s]} {_text(mnames[s])}".strip()
                reasons.setdefault(int(t), []).append(label)
    if markets is not None and len(markets):
        same_projected_crs(toilets, markets)
        ti, mi = shapely.STRtree(markets.geometry.to_numpy()).query(pts, predicate="dwithin", distance=near_m)
        mk = _names(markets, "markets")
        for t, m in zip(ti, mi, strict=True):
            reasons.setdefault(int(t), []).append(f"农贸市场 {mk[m]}")
    out = []
    for t, why in sorted(reasons.items()):
        c = cls[t]
        rank = TOILET_CLASS_RANK.get(str(c)) if c is not None else None
        if rank is None or rank > need:
            out.append({"row": t, "name": tnames[t], "toilet_class": c if rank else "未填 missing",
                        "required": f"{min_class}及以上", "reason": "; ".join(dict.fromkeys(why))})
    return pd.DataFrame(out, columns=cols)
