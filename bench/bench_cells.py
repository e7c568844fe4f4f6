"""Experiment (not used by sanigrid): service areas from cells split once from the network's band.

    .venv/bin/python bench/bench_cells.py OSM_FILE [--radius 300] [--buffer 25]

The idea (issue #12): split the network's band once into non-overlapping cells, one per edge (Voronoi
regions of points sampled along the edges, dissolved per edge, clipped to the edge's own band); a facility's
area is then the union of the cells of the edges it reaches whole plus, at the frontier, the cell cut down to
the band of the part reached. This script builds the cells and times the unions against the construction in
use (``geo.coverage.service_areas``: merged lines' bands, discs, Clipper), on one OSM file's toilets.

Measured on Helsinki.osm.pbf (5,224 edges, 17 toilets, r = 300 m, 25 m; 2 cores, load 3–8):
    cells, one-off: 1.7–3.6 s (28,158 samples); coverage_clean of them (so that they are edge-matched): 1.7 s
    pieces per facility (6,841 whole cells + 1,789 cut ones, 197k vertices): 0.13–0.42 s (the cuts: GEOS)
    GEOS union_all of each facility's pieces: 1.3–3.2 s; GEOS coverage_union of the cleaned whole cells alone
    (frontier left out, a lower bound): 0.22–0.27 s; Clipper on one facility's cells: 0.7–41 s (shared collinear
    edges make it superlinear); the raw cells are not edge-matched (coverage_union refuses them)
    the construction in use: 0.35–0.94 s for all 17 polygons (same runs)
So with the overlays at hand the cells are no faster than the bands. What it would take: edge-matched
cells (coverage_clean, one-off; tiles at 10^6 edges) and a union in numpy (drop the segments shared by two
reached cells, link the rest into rings) with the frontier cut in numpy too — not done.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sanigrid.geo.network import Network, substrings

_CACHE = "_edge_cells"  # key in the network object's __dict__ (the dataclass is frozen; cached_property does the same)
_EPS = 1e-9


def root_edges(network: Network) -> tuple[Network, np.ndarray, np.ndarray]:
    """The network the edges were split from (the one without ``parent``), and for each edge its edge
    there and the metres along that edge where it starts (networks made by :func:`insert_points`)."""
    if network.parent is None:
        return network, np.arange(network.n_edges), np.zeros(network.n_edges)
    parent = network.parent
    root, p_edge, p_off = root_edges(parent)
    split = np.zeros(parent.n_edges, bool)
    split[network.split_edges] = True
    kept = np.flatnonzero(~split)
    # insert_points keeps the other edges in order, then appends one piece ending at each new node (new nodes
    # are numbered by edge, then along it), then the last piece of each split edge (edges in order)
    n0, n_new = parent.n_nodes, network.n_nodes - parent.n_nodes
    first = len(kept) + np.arange(n_new)
    last = len(kept) + n_new + np.arange(len(network.split_edges))
    last_new = network.u[last] - n0  # the last new node on each split edge
    which = np.searchsorted(last_new, np.arange(n_new), side="left")
    lf = network.length[first]
    cum = np.cumsum(lf)
    group_start = np.searchsorted(which, which, side="left")
    off_first = cum - lf - np.r_[0.0, cum][group_start]
    tot = np.bincount(which, weights=lf, minlength=len(last))
    edge = np.r_[kept, network.split_edges[which], network.split_edges]
    off = np.r_[np.zeros(len(kept)), off_first, tot]
    return root, p_edge[edge], p_off[edge] + off


def _samples(network: Network, *, spacing_m: float, near_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along every edge: at ``near_m``, 3·``near_m``, 9·``near_m`` … from each end (so that near a
    junction the cells part along the bisector), and between those at most ``spacing_m`` apart."""
    L = network.length
    ends: list[float] = []
    d = near_m
    while d < spacing_m / 2:
        ends.append(d)
        d *= 3
    ends_a = np.asarray(ends)
    # per edge: the end offsets that fit (below half the length), then an even spacing in between
    fit = ends_a[None, :] < L[:, None] / 2
    n_end = fit.sum(axis=1)
    inner_from = np.where(n_end > 0, ends_a[np.maximum(n_end - 1, 0)], 0.0)
    span = L - 2 * inner_from
    n_in = np.maximum(np.ceil(span / spacing_m).astype(np.int64) - 1, 0)
    n_in = np.where(n_end == 0, 1, n_in)  # a very short edge: its midpoint
    cnt = 2 * n_end + n_in
    edge = np.repeat(np.arange(network.n_edges), cnt)
    start = np.r_[0, np.cumsum(cnt)[:-1]]
    j = np.arange(len(edge)) - np.repeat(start, cnt)
    ne, ni, Le, fr = n_end[edge], n_in[edge], L[edge], inner_from[edge]
    near_u = j < ne
    inner = (j >= ne) & (j < ne + ni)
    at = np.empty(len(edge))
    at[near_u] = ends_a[j[near_u]]
    k = j[inner] - ne[inner] + 1
    at[inner] = np.where(ne[inner] > 0, fr[inner] + (Le[inner] - 2 * fr[inner]) * k / (ni[inner] + 1), Le[inner] / 2)
    far = ~(near_u | inner)
    at[far] = Le[far] - ends_a[(cnt[edge] - 1 - j)[far]]
    pts = shapely.line_interpolate_point(network.geometry[edge], at)
    return shapely.get_coordinates(pts), edge


def edge_cells(network: Network, *, buffer_m: float, quad_segs: int = 2, spacing_m: float | None = None,
               tile_m: float = 2000.0) -> np.ndarray:
    """One polygon per edge of ``network``: the part of the edge's band nearer to it than to any other edge.

    Built once per (network, ``buffer_m``, ``quad_segs``) and cached on the network object. The Voronoi
    regions are computed tile by tile (``tile_m`` squares, each with the samples of every edge whose
    middle falls in it plus those within a margin around it: a cell only reaches ``buffer_m`` from its
    edge, so only samples within about twice that can compete), so memory stays bounded at 10⁶ edges.
    """
    cache: dict[tuple[float, int, float | None], np.ndarray] = network.__dict__.setdefault(_CACHE, {})
    key = (float(buffer_m), int(quad_segs), spacing_m)
    if key in cache:
        return cache[key]
    m = network.n_edges
    cells = np.full(m, None, dtype=object)
    if m == 0:
        cache[key] = cells
        return cells
    spacing = buffer_m / 2 if spacing_m is None else spacing_m
    xy, of = _samples(network, spacing_m=spacing, near_m=min(0.5, buffer_m / 50))
    # identical samples (edges drawn twice): one point each, owned by the first edge
    _, first = np.unique(np.round(xy, 6), axis=0, return_index=True)
    first = np.sort(first)
    xy, of = xy[first], of[first]
    mid = shapely.get_coordinates(shapely.line_interpolate_point(network.geometry, 0.5, normalized=True))
    lo = xy.min(axis=0)
    tile = np.floor((mid - lo) / tile_m).astype(np.int64)
    nt = tile.max(axis=0) + 1
    tile_id = tile[:, 0] * nt[1] + tile[:, 1]
    pt_tile = tile_id[of]
    margin = 2 * buffer_m + spacing
    order = np.argsort(pt_tile, kind="stable")
    cuts = np.r_[0, np.flatnonzero(np.diff(pt_tile[order])) + 1, len(order)]
    from scipy.spatial import cKDTree

    tree = cKDTree(xy) if len(cuts) > 2 else None
    bands = shapely.buffer(network.geometry, buffer_m, quad_segs=quad_segs)
    for i, j in zip(cuts[:-1], cuts[1:], strict=True):
        own = order[i:j]
        if tree is None:
            pts = np.arange(len(xy))
        else:
            box_lo, box_hi = xy[own].min(axis=0) - margin, xy[own].max(axis=0) + margin
            c, h = (box_lo + box_hi) / 2, (box_hi - box_lo) / 2
            near = np.asarray(tree.query_ball_point(c, float(np.hypot(*h))), np.int64)
            inside = np.all((xy[near] >= box_lo) & (xy[near] <= box_hi), axis=1)
            pts = np.union1d(near[inside], own)
        # GEOS' Voronoi loses precision far from the origin (invalid regions at projected coordinates):
        # computed around the tile's corner, moved back
        here = xy[pts]
        origin = np.floor(here.min(axis=0))
        env = shapely.box(*(-10 * buffer_m, -10 * buffer_m), *(here.max(axis=0) - origin + 10 * buffer_m))
        vor = shapely.voronoi_polygons(shapely.multipoints(here - origin), extend_to=env, ordered=True)
        regions = shapely.transform(np.asarray(shapely.get_parts(vor), dtype=object), lambda c, o=origin: c + o)
        bad = ~shapely.is_valid(regions)
        if bad.any():
            regions[bad] = _polygonal(shapely.make_valid(regions[bad]))
        mine = np.isin(pts, own)
        e = of[pts[mine]]
        clipped = shapely.intersection(regions[mine], bands[e])  # small pieces: cheap to dissolve
        o = np.argsort(e, kind="stable")
        e, clipped = e[o], clipped[o]
        starts = np.r_[0, np.flatnonzero(np.diff(e)) + 1]
        grouped = shapely.multipolygons(shapely.get_parts(clipped),
                                        indices=np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(e)]))
                                        [np.repeat(np.arange(len(clipped)), shapely.get_num_geometries(clipped))])
        cells[e[starts]] = _polygonal(shapely.buffer(grouped, 0))  # dissolves the touching regions of an edge
    cache[key] = cells
    return cells


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Polygonal parts only (an intersection may leave a line or point where two polygons touch)."""
    out = np.asarray(geoms, dtype=object).copy()
    t = shapely.get_type_id(out)
    for i in np.flatnonzero((t != 3) & (t != 6)):
        parts = shapely.get_parts(out[i])
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(parts) if len(parts) else shapely.Polygon()
    return out


def _merge_intervals(grp: np.ndarray, edge: np.ndarray, s: np.ndarray, e: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per (group, edge), the union of its [s, e] intervals as disjoint intervals."""
    if not len(s):
        return grp, edge, s, e
    o = np.lexsort((s, edge, grp))
    grp, edge, s, e = grp[o], edge[o], s[o], e[o]
    new_key = np.r_[True, (grp[1:] != grp[:-1]) | (edge[1:] != edge[:-1])]
    key_id = np.cumsum(new_key) - 1
    # running maximum of the ends within each key (offset by key so that keys never mix)
    span = float(e.max() - s.min()) + 1.0
    run = np.maximum.accumulate(e + key_id * span) - key_id * span
    starts = new_key | np.r_[True, s[1:] > run[:-1] + 1e-7]
    sid = np.cumsum(starts) - 1
    n = int(sid[-1]) + 1
    out_s = s[starts]
    out_e = np.full(n, -np.inf)
    np.maximum.at(out_e, sid, e)
    return grp[starts], edge[starts], out_s, out_e


def cell_pieces(network: Network, grp: np.ndarray, edge: np.ndarray, s: np.ndarray, e: np.ndarray,
                room: Any, *, buffer_m: float, quad_segs: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
    """The pieces of cells that make each group's area, and the group of each piece.

    ``(grp, edge, s, e)`` are the reached parts of the edges of ``network`` (metres along them);
    ``room(grp, node)`` says whether the group turns every corner at a node (reaches it with ``buffer_m``
    to spare). Returns (pieces, their groups, how many are whole cells).
    """
    root, r_edge, r_off = root_edges(network)
    cells = edge_cells(root, buffer_m=buffer_m, quad_segs=quad_segs)
    g, re, rs, r_e = _merge_intervals(np.asarray(grp, np.int64), r_edge[edge], r_off[edge] + s, r_off[edge] + e)
    L = root.length[re]
    at_u = rs <= 1e-6
    at_v = r_e >= L - 1e-6
    ru = np.zeros(len(g), bool)
    rv = np.zeros(len(g), bool)
    ru[at_u] = room(g[at_u], root.u[re[at_u]])
    rv[at_v] = room(g[at_v], root.v[re[at_v]])
    whole = at_u & at_v & ru & rv
    pieces = np.empty(len(g), dtype=object)
    pieces[whole] = cells[re[whole]]
    cut = np.flatnonzero(~whole)
    if len(cut):
        lines = substrings(root.geometry[re[cut]], rs[cut], r_e[cut])
        lines = _extend(lines, ru[cut], rv[cut], 2 * buffer_m)
        bands = shapely.buffer(lines, buffer_m, quad_segs=quad_segs, cap_style="flat", join_style="round")
        pieces[cut] = shapely.intersection(cells[re[cut]], bands)
    keep = ~shapely.is_empty(pieces) & ~shapely.is_missing(pieces)
    return pieces[keep], g[keep], int(whole.sum())


def _extend(lines: np.ndarray, at_start: np.ndarray, at_end: np.ndarray, by_m: float) -> np.ndarray:
    """The lines lengthened by ``by_m`` straight on past their first / last point where asked."""
    if not (at_start.any() or at_end.any()):
        return lines
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    n = len(lines)
    first = np.searchsorted(idx, np.arange(n))
    last = np.r_[first[1:], len(xy)] - 1
    d0 = xy[first] - xy[first + 1]
    d1 = xy[last] - xy[last - 1]
    n0 = np.hypot(*d0.T)[:, None]
    n1 = np.hypot(*d1.T)[:, None]
    p0 = xy[first] + d0 / np.where(n0 > 0, n0, 1) * by_m
    p1 = xy[last] + d1 / np.where(n1 > 0, n1, 1) * by_m
    ids = np.r_[idx, np.flatnonzero(at_start), np.flatnonzero(at_end)]
    pos = np.r_[np.arange(len(xy)), first[at_start] - 0.5, last[at_end] + 0.5]
    coords = np.vstack([xy, p0[at_start], p1[at_end]])
    o = np.lexsort((pos, ids))
    return shapely.linestrings(coords[o], indices=ids[o])


def main() -> None:
    import argparse
    import logging

    from bench_coverage import city_network

    from sanigrid.geo.coverage import _reach_parts, service_areas
    from sanigrid.geo.network import insert_points, reach, snap_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("osm")
    ap.add_argument("--radius", type=float, default=300.0)
    ap.add_argument("--buffer", type=float, default=25.0)
    a = ap.parse_args()
    logging.disable(logging.WARNING)
    net, fac, _ = city_network(a.osm)
    t = time.perf_counter()
    cells = edge_cells(net, buffer_m=a.buffer)
    print(f"cells (one-off): {time.perf_counter() - t:.3f} s for {net.n_edges:,} edges")
    ok = ~shapely.is_missing(cells) & ~shapely.is_empty(cells)
    t = time.perf_counter()
    clean = np.full(len(cells), None, dtype=object)
    clean[ok] = shapely.coverage_clean(cells[ok])
    print(f"coverage_clean (one-off): {time.perf_counter() - t:.3f} s; edge-matched: "
          f"{bool(shapely.coverage_is_valid(clean[ok]))}")
    net2, nodes = insert_points(net, snap_points(net, fac, max_snap_m=200))
    t = time.perf_counter()
    _, _, st = service_areas(net2, nodes, radius_m=a.radius, buffer_m=a.buffer, dissolve=False)
    print(f"construction in use, polygons: {st['polygons_s']:.3f} s ({time.perf_counter() - t:.3f} s with reach)")
    k, node, dist = reach(net2, nodes, limit_m=a.radius)
    src, edge, s, e = _reach_parts(net2, k, node, dist, radius_m=a.radius)
    N = np.int64(net2.n_nodes)
    has = a.radius - dist >= a.buffer
    rk = np.sort(k[has] * N + node[has])

    def room(g: np.ndarray, n: np.ndarray) -> np.ndarray:
        w = g * N + n
        return rk[np.minimum(np.searchsorted(rk, w), len(rk) - 1)] == w

    t = time.perf_counter()
    pieces, grp, n_whole = cell_pieces(net2, src, edge, s, e, room, buffer_m=a.buffer)
    print(f"cells: pieces {time.perf_counter() - t:.3f} s ({n_whole:,} whole, {len(pieces) - n_whole:,} cut)")
    o = np.argsort(grp, kind="stable")
    cut = np.r_[0, np.flatnonzero(np.diff(grp[o])) + 1, len(o)]
    t = time.perf_counter()
    for i, j in zip(cut[:-1], cut[1:], strict=True):
        shapely.union_all(pieces[o[i:j]])
    print(f"cells: GEOS union_all per facility {time.perf_counter() - t:.3f} s")
    root, r_edge, _ = root_edges(net2)
    full = (s <= 1e-6) & (e >= net2.length[edge] - 1e-6)
    g, E = src[full], r_edge[edge[full]]
    o = np.argsort(g, kind="stable")
    cut = np.r_[0, np.flatnonzero(np.diff(g[o])) + 1, len(o)]
    t = time.perf_counter()
    for i, j in zip(cut[:-1], cut[1:], strict=True):
        mine = clean[np.unique(E[o[i:j]])]
        shapely.coverage_union_all(mine[~shapely.is_missing(mine)])
    print(f"cells: coverage_union of the whole cells only (a lower bound) {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
