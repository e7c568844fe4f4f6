"""The walkable street network: streets + alleys noded into one graph, points snapped onto edges.

Everything here works in the project's projected CRS in metres. The graph is undirected; edge
lengths are the lengths of the edge geometries (metres), so a path is never shorter than the
straight line between its ends (the service-area search relies on that).

Main pieces
-----------
:func:`build_network`      streets + alleys → :class:`Network` (crossings and shared ends noded)
:func:`snap_points`        nearest *edge* of each point, the offset along it, the snap distance
:func:`insert_points`      split edges at snapped points, so every point is a node of its own
:func:`nearest_distances`  one multi-source shortest-path pass (scipy.sparse.csgraph.dijkstra)
:func:`reach`              per-source distances within a radius, all sources in one vectorised search
:func:`components_frame`   connected components as a layer (islands are data errors to show)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
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

log = logging.getLogger(__name__)

_EPS = 1e-9
LINE_COLUMNS = ("name", "road_class", "busy", "layer", "osm_id")


@dataclass(frozen=True, eq=False)
class Network:
    """An undirected street graph in metres.

    Attributes
    ----------
    nodes : (n, 2) float array of node coordinates (project CRS, metres).
    u, v : (m,) int arrays, the end nodes of each edge; the geometry runs from ``u`` to ``v``.
    length : (m,) float array, edge length in metres (= geometry length).
    geometry : (m,) array of shapely LineStrings.
    line : (m,) int array, the row (position) in :attr:`lines` the edge comes from.
    lines : DataFrame of the source lines' attributes (name, road_class, busy, layer, osm_id).
    crs : the CRS of the coordinates.
    """

    nodes: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    geometry: np.ndarray
    line: np.ndarray
    lines: pd.DataFrame = field(repr=False)
    crs: Any = None
    # the network this one was split from (its first nodes are the parent's): lets the indexes
    # of a big network be reused after a few points were inserted
    parent: Network | None = field(default=None, repr=False)
    split_edges: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @cached_property
    def graph(self) -> sparse.csr_matrix:
        """Symmetric CSR adjacency (metres); parallel edges keep the shortest, loops are dropped."""
        if self.parent is not None and "graph" in self.parent.__dict__ and self.split_edges is not None:
            return self._graph_from_parent()
        return self._adjacency(self.u, self.v, self.length, self.n_nodes)

    def _graph_from_parent(self) -> sparse.csr_matrix:
        # The parent's graph, padded with the new nodes, plus the pieces of the split edges. The
        # split edges stay in the graph: each is exactly as long as the chain of its pieces, so no
        # distance changes, and the big matrix is reused as it is.
        P, n = self.parent, self.n_nodes
        assert P is not None and self.split_edges is not None
        G = P.graph
        indptr = np.r_[G.indptr, np.full(n - P.n_nodes, G.indptr[-1])]
        padded = sparse.csr_matrix((G.data, G.indices, indptr), shape=(n, n))
        m_old = P.n_edges - len(self.split_edges)
        new = self._adjacency(self.u[m_old:], self.v[m_old:], self.length[m_old:], n)
        return (padded + new).tocsr()  # no shared entries: every piece has a new node at one end

    @staticmethod
    def _adjacency(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int) -> sparse.csr_matrix:
        keep = u != v
        a, b, w = u[keep], v[keep], length[keep]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        order = np.lexsort((w, hi, lo))
        lo, hi, w = lo[order], hi[order], w[order]
        first = np.ones(len(lo), bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, w = lo[first], hi[first], np.maximum(w[first], _EPS)  # explicit zero = no edge in csgraph
        return sparse.csr_matrix((np.r_[w, w], (np.r_[lo, hi], np.r_[hi, lo])), shape=(n, n))

    @cached_property
    def incidence(self) -> sparse.csr_matrix:
        """Node × edge incidence: 1 where the node is the edge's ``u`` end, 2 where it is the ``v`` end."""
        m = self.n_edges
        rows = np.r_[self.u, self.v]
        cols = np.r_[np.arange(m), np.arange(m)]
        side = np.r_[np.ones(m), np.full(m, 2.0)]
        return sparse.csr_matrix((side, (rows, cols)), shape=(self.n_nodes, m))

    @cached_property
    def node_tree(self) -> cKDTree:
        return cKDTree(self.nodes)

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.geometry)

    @cached_property
    def component(self) -> np.ndarray:
        """Connected-component label of each node (0 = the largest component)."""
        _, lab = csgraph.connected_components(self.graph, directed=False)
        ncomp = int(lab.max()) + 1 if len(lab) else 0
        # relabel by total edge length so that 0 is the main network
        elen = np.bincount(lab[self.u], weights=self.length, minlength=ncomp)
        rank = np.empty(ncomp, int)
        rank[np.argsort(-elen, kind="stable")] = np.arange(ncomp)
        return rank[lab]

    @cached_property
    def end_directions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each edge end (the ``u`` ends, then the ``v`` ends: 2·m entries): the angle (radians) of the
        edge's first segment leaving that node, and that segment's length (metres)."""
        m = self.n_edges
        if m == 0:
            return np.zeros(0), np.zeros(0)
        coords, idx = shapely.get_coordinates(self.geometry, return_index=True)
        first = np.searchsorted(idx, np.arange(m))
        last = np.r_[first[1:], len(coords)] - 1
        d = np.vstack([coords[first + 1] - coords[first], coords[last - 1] - coords[last]])
        return np.arctan2(d[:, 1], d[:, 0]), np.hypot(d[:, 0], d[:, 1])

    @cached_property
    def straight_partner(self) -> np.ndarray:
        """For each edge end (as in :attr:`end_directions`), the end of another edge at the same node that
        continues it most nearly straight (-1: none). Ends are paired at most once per node: the two ends
        of a node of degree 2 always, at a junction the straightest pairs first while they bend by less
        than 60°. Loops are never paired. Used to draw long bands instead of one per edge."""
        m = self.n_edges
        partner = np.full(2 * m, -1, np.int64)
        if m == 0:
            return partner
        node = np.r_[self.u, self.v]
        ang, _ = self.end_directions
        ok = np.flatnonzero(np.r_[self.u != self.v, self.u != self.v])
        order = ok[np.argsort(node[ok], kind="stable")]
        nd = node[order]
        start = np.r_[0, np.flatnonzero(np.diff(nd)) + 1]
        deg = np.diff(np.r_[start, len(nd)])
        for d in range(2, min(int(deg.max(initial=0)), 8) + 1):
            at = start[deg == d]
            if not len(at):
                continue
            E = order[at[:, None] + np.arange(d)]  # (nodes, d) end ids
            ii, jj = np.triu_indices(d, 1)
            diff = np.abs((ang[E[:, ii]] - ang[E[:, jj]] + np.pi) % (2 * np.pi) - np.pi)  # 0 … π
            cost = np.pi - diff  # 0 = straight on
            if d > 2:
                cost[cost >= np.pi / 3] = np.inf
            free = np.ones(E.shape, bool)
            rows = np.arange(len(E))
            for _ in range(d // 2):
                c = np.where(free[:, ii] & free[:, jj], cost, np.inf)
                best = np.argmin(c, axis=1)
                take = np.isfinite(c[rows, best])
                if not take.any():
                    break
                r, a, b = rows[take], ii[best[take]], jj[best[take]]
                partner[E[r, a]], partner[E[r, b]] = E[r, b], E[r, a]
                free[r, a] = free[r, b] = False
        return partner

    def edges_frame(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame with the source line's attributes."""
        attrs = self.lines.iloc[self.line].reset_index(drop=True)
        out = gpd.GeoDataFrame(attrs, geometry=self.geometry, crs=self.crs)
        out["u"], out["v"], out["length_m"] = self.u, self.v, self.length
        return out


# ------------------------------------------------------------------------------------ geometry helpers
def substrings(geoms: np.ndarray, start_m: np.ndarray, end_m: np.ndarray) -> np.ndarray:
    """Vectorised ``shapely.ops.substring``: the part of each line between two distances.

    ``start_m < end_m`` are metres from each line's first vertex (clipped to the line). Lines
    whose part is empty come back as ``None``.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    out = np.full(n, None, dtype=object)
    if n == 0:
        return out
    lens = shapely.length(geoms)
    s = np.clip(np.asarray(start_m, float), 0, lens)
    e = np.clip(np.asarray(end_m, float), 0, lens)
    ok = e - s > _EPS
    if not ok.any():
        return out
    g, s, e = geoms[ok], s[ok], e[ok]
    coords, idx = shapely.get_coordinates(g, return_index=True)
    seg = np.zeros(len(coords))
    same = np.r_[False, idx[1:] == idx[:-1]]
    step = np.zeros(len(coords))
    step[1:] = np.hypot(*(coords[1:] - coords[:-1]).T)
    step[~same] = 0.0
    cum = np.cumsum(step)
    first = np.flatnonzero(~same)
    cum -= np.repeat(cum[first], np.diff(np.r_[first, len(coords)]))
    del seg
    inner = (cum > s[idx] + _EPS) & (cum < e[idx] - _EPS)
    last = np.r_[first[1:], len(coords)] - 1
    ps = _interpolate(coords, cum, first, last, s)
    pe = _interpolate(coords, cum, first, last, e)
    k = len(g)
    ids = np.r_[np.arange(k), idx[inner], np.arange(k)]
    key = np.r_[np.full(k, -np.inf), cum[inner], np.full(k, np.inf)]
    xy = np.vstack([ps, coords[inner], pe])
    order = np.lexsort((key, ids))
    out[np.flatnonzero(ok)] = shapely.linestrings(xy[order], indices=ids[order])
    return out


def _interpolate(coords: np.ndarray, cum: np.ndarray, first: np.ndarray, last: np.ndarray, at: np.ndarray
                 ) -> np.ndarray:
    """Points ``at`` metres along each line (lines given by their vertex ranges ``first … last``)."""
    # binary search per line, done for all lines at once on (line, distance) keys
    line = np.repeat(np.arange(len(first)), last - first + 1)
    scale = float(cum.max()) + 1.0 if len(cum) else 1.0
    key = line * scale + cum
    j = np.searchsorted(key, np.arange(len(first)) * scale + at, side="right") - 1
    j = np.clip(j, first, np.maximum(last - 1, first))
    seg = cum[j + 1] - cum[j]
    t = np.where(seg > 0, (at - cum[j]) / np.where(seg > 0, seg, 1), 0.0)
    t = np.clip(t, 0, 1)[:, None]
    return coords[j] * (1 - t) + coords[j + 1] * t


def _explode_lines(frames: list[tuple[str, gpd.GeoDataFrame]]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rows, geoms, line_id = [], [], []
    offset = 0
    for layer, f in frames:
        attrs = pd.DataFrame(index=range(len(f)))
        for c in LINE_COLUMNS:
            if c == "layer":
                attrs[c] = layer
            elif c in f.columns:
                attrs[c] = f[c].to_numpy()
            else:
                attrs[c] = None
        attrs["source_row"] = np.arange(len(f))
        attrs["level"] = line_levels(f)
        rows.append(attrs)
        parts, pidx = shapely.get_parts(f.geometry.to_numpy(), return_index=True)
        keep = shapely.get_type_id(parts) == 1  # LineString
        geoms.append(parts[keep])
        line_id.append(pidx[keep] + offset)
        offset += len(f)
    lines = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=[*LINE_COLUMNS, "source_row", "level"])
    g = np.concatenate(geoms) if geoms else np.array([], dtype=object)
    li = np.concatenate(line_id) if line_id else np.array([], dtype=int)
    return g, li, lines


def _set_endpoints(geoms: np.ndarray, start_xy: np.ndarray, end_xy: np.ndarray) -> np.ndarray:
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    first = np.r_[0, np.flatnonzero(idx[1:] != idx[:-1]) + 1]
    last = np.r_[first[1:] - 1, len(coords) - 1]
    coords = coords.copy()
    coords[first] = start_xy
    coords[last] = end_xy
    return shapely.linestrings(coords, indices=idx)


def line_levels(frame: pd.DataFrame) -> np.ndarray:
    """The level of each line: OSM ``layer`` when given, else 1 on a bridge, -1 in a tunnel, else 0.

    Columns ``layer`` (int), ``bridge`` and ``tunnel`` (bool) are read when the frame has them
    (the streets layer keeps them from OSM); a frame without them is all at level 0.
    """
    n = len(frame)
    level = np.zeros(n)
    for col, lv in (("tunnel", -1.0), ("bridge", 1.0)):
        if col in frame.columns:
            flag = pd.array(frame[col], dtype="boolean").fillna(False).to_numpy(dtype=bool)
            level[flag] = lv
    if "layer" in frame.columns:
        given = pd.to_numeric(pd.Series(frame["layer"].to_numpy()), errors="coerce").to_numpy(dtype=float)
        level = np.where(np.isnan(given), level, given)
    return level


def _node_by_level(geoms: np.ndarray, line_id: np.ndarray, line_level: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Node crossings among lines of the same level; across levels, split only at shared vertices."""
    level = line_level[line_id] if len(line_level) else np.zeros(len(geoms))
    out_g, out_l, out_lv = [], [], []
    for lv in np.unique(level):
        m = level == lv
        g, li = geoms[m], line_id[m]
        noded = shapely.get_parts(shapely.node(shapely.multilinestrings(g)))
        noded = noded[shapely.length(noded) > 0]
        mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
        hit = shapely.STRtree(g).query_nearest(mid, all_matches=False)
        src = np.empty(len(noded), int)
        src[hit[0]] = li[hit[1]]
        out_g.append(noded)
        out_l.append(src)
        out_lv.append(np.full(len(noded), lv))
    geoms, line_id, level = np.concatenate(out_g), np.concatenate(out_l), np.concatenate(out_lv)
    if len(out_g) < 2:
        return geoms, line_id
    # a vertex that lines of two levels both have is a shared node (a ramp onto a bridge): split there
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    _, key = np.unique(coords, axis=0, return_inverse=True)
    key = key.ravel()
    pairs = np.unique(np.column_stack([key, np.searchsorted(np.unique(level), level[idx])]), axis=0)
    shared = np.bincount(pairs[:, 0], minlength=int(key.max()) + 1) > 1
    first = np.r_[True, idx[1:] != idx[:-1]]
    last = np.r_[idx[1:] != idx[:-1], True]
    cut = shared[key] & ~first & ~last
    if not cut.any():
        return geoms, line_id
    rep = 1 + cut.astype(int)
    c2 = np.repeat(coords, rep, axis=0)
    starts = np.repeat(first, rep)
    second = np.zeros(len(c2), bool)
    second[np.cumsum(rep)[cut] - 1] = True  # the copy of a cut vertex starts the next piece
    piece = np.cumsum(starts | second) - 1
    owner = np.repeat(idx, rep)
    pieces = shapely.linestrings(c2, indices=piece)
    src = owner[np.r_[0, np.flatnonzero(np.diff(piece)) + 1]]
    return pieces, line_id[src]


# ------------------------------------------------------------------------------------ building
def build_network(
    streets: gpd.GeoDataFrame,
    alleys: gpd.GeoDataFrame | None = None,
    *,
    snap_tolerance_m: float = 1.0,
    node_crossings: bool = True,
) -> Network:
    """Build one walkable graph from street and alley lines.

    Lines at the same level are noded where they cross or touch (GEOS noding); lines at
    different levels (a bridge over a street, a tunnel under it: see :func:`line_levels`) join
    only where they share a vertex, as OSM ways share a node. Line ends closer than
    ``snap_tolerance_m`` are joined into one node. Edge lengths are in metres.

    Parameters
    ----------
    streets, alleys : line layers in the same projected CRS (metres). ``alleys`` may be None.
    snap_tolerance_m : ends closer than this (metres) become one node.
    node_crossings : node lines at every crossing (set False only for input already noded,
        e.g. a generated grid, to skip the noding step).

    Returns
    -------
    Network
    """
    frames = [("streets", streets)] + ([("alleys", alleys)] if alleys is not None and len(alleys) else [])
    same_projected_crs(*[f for _, f in frames])
    crs = streets.crs
    geoms, line_id, lines = _explode_lines(frames)
    valid = ~shapely.is_empty(geoms) & (shapely.length(geoms) > 0)
    geoms, line_id = geoms[valid], line_id[valid]
    if len(geoms) == 0:
        raise AnalysisError("the streets and alleys layers hold no lines; import streets first "
                            "(sanigrid import streets FILE) or run sanigrid demo")
    if node_crossings:
        geoms, line_id = _node_by_level(geoms, line_id, lines["level"].to_numpy())
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    first = np.r_[0, np.flatnonzero(idx[1:] != idx[:-1]) + 1]
    last = np.r_[first[1:] - 1, len(coords) - 1]
    ends = np.vstack([coords[first], coords[last]])
    uniq, inv = np.unique(ends, axis=0, return_inverse=True)
    inv = inv.ravel()
    if snap_tolerance_m > 0 and len(uniq) > 1:
        pairs = cKDTree(uniq).query_pairs(snap_tolerance_m, output_type="ndarray")
        if len(pairs):
            m = len(uniq)
            adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
            _, lab = csgraph.connected_components(adj, directed=False)
            rep = np.full(lab.max() + 1, len(uniq))
            np.minimum.at(rep, lab, np.arange(m))
            uniq, inv = uniq[rep], lab[inv]
            moved = np.any(uniq[inv] != ends, axis=1)
            if moved.any():
                k = len(geoms)
                geoms = _set_endpoints(geoms, uniq[inv[:k]], uniq[inv[k:]])
    k = len(geoms)
    u, v = inv[:k].astype(np.int64), inv[k:].astype(np.int64)
    length = shapely.length(geoms)
    keep = length > _EPS
    net = Network(nodes=uniq, u=u[keep], v=v[keep], length=length[keep], geometry=geoms[keep],
                  line=line_id[keep].astype(np.int64), lines=lines, crs=crs)
    if snap_tolerance_m > 0:
        net = _join_dangles(net, snap_tolerance_m)
    log.info("network: %d nodes, %d edges, %.1f km", net.n_nodes, net.n_edges, net.length.sum() / 1000)
    return net


def _join_dangles(net: Network, tol: float) -> Network:
    """Join dead ends that stop short of another line (closer than ``tol`` metres) onto that line.

    The line is split at the foot of the perpendicular and the dead end moved there (an
    undershoot in surveyed data would otherwise cut the town into false islands).
    """
    deg = np.bincount(np.r_[net.u, net.v], minlength=net.n_nodes)
    dang = np.flatnonzero(deg == 1)
    if len(dang) == 0:
        return net
    pts = shapely.points(net.nodes[dang])
    pi, ei = net.edge_tree.query(pts, predicate="dwithin", distance=tol)
    own = (net.u[ei] == dang[pi]) | (net.v[ei] == dang[pi])
    pi, ei = pi[~own], ei[~own]
    if len(pi) == 0:
        return net
    d = shapely.distance(pts[pi], net.geometry[ei])
    order = np.lexsort((d, pi))
    pi, ei, d = pi[order], ei[order], d[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    pi, ei, d = pi[first], ei[first], d[first]
    snaps = pd.DataFrame({"edge": ei, "offset_m": shapely.line_locate_point(net.geometry[ei], pts[pi]),
                          "snap_m": d, "attached": np.ones(len(pi), bool)})
    split, target = insert_points(net, snaps)
    moved = dang[pi]
    ok = target != moved
    moved, target = moved[ok], target[ok]
    relabel = np.arange(split.n_nodes)
    relabel[moved] = target
    u, v = relabel[split.u], relabel[split.v]
    geoms = split.geometry
    touch = np.flatnonzero((u != split.u) | (v != split.v))
    if len(touch):
        geoms = geoms.copy()
        geoms[touch] = _set_endpoints(geoms[touch], split.nodes[u[touch]], split.nodes[v[touch]])
    used = np.unique(np.r_[u, v])
    new_id = np.full(split.n_nodes, -1, np.int64)
    new_id[used] = np.arange(len(used))
    log.info("joined %d dead ends onto lines within %.2f m", len(moved), tol)
    return Network(nodes=split.nodes[used], u=new_id[u], v=new_id[v], length=shapely.length(geoms), geometry=geoms,
                   line=split.line, lines=split.lines, crs=split.crs)


def network_from_edges(nodes: np.ndarray, u: np.ndarray, v: np.ndarray, *, crs: Any,
                       lines: pd.DataFrame | None = None, line: np.ndarray | None = None) -> Network:
    """A network from node coordinates and straight edges (for generated grids and tests)."""
    nodes = np.asarray(nodes, float)
    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    geoms = shapely.linestrings(np.stack([nodes[u], nodes[v]], axis=1))
    if lines is None:
        lines = pd.DataFrame({c: [None] for c in LINE_COLUMNS})
        line = np.zeros(len(u), np.int64)
    return Network(nodes=nodes, u=u, v=v, length=shapely.length(geoms), geometry=geoms,
                   line=np.asarray(line, np.int64), lines=lines, crs=crs)


def components_frame(network: Network) -> gpd.GeoDataFrame:
    """One row per connected component: its lines, length (m) and whether it is the main network."""
    comp = network.component[network.u]
    ncomp = int(comp.max()) + 1 if len(comp) else 0
    order = np.argsort(comp, kind="stable")
    geoms = shapely.multilinestrings(network.geometry[order], indices=comp[order])
    lengths = np.bincount(comp, weights=network.length, minlength=ncomp)
    return gpd.GeoDataFrame(
        {"component": np.arange(ncomp), "length_m": lengths.round(1), "main": np.arange(ncomp) == 0},
        geometry=geoms, crs=network.crs,
    )


# ------------------------------------------------------------------------------------ points
def snap_points(network: Network, points: gpd.GeoSeries | gpd.GeoDataFrame | np.ndarray, *,
                max_snap_m: float) -> pd.DataFrame:
    """Nearest edge of each point and where on it the point projects.

    Parameters
    ----------
    points : points (or any geometry: its representative point is used) in the network's CRS.
    max_snap_m : points farther than this (metres) from every edge are not attached.

    Returns
    -------
    DataFrame on the points' positions with ``edge`` (-1 if not attached), ``offset_m`` (metres
    from the edge's ``u`` end), ``snap_m`` (distance to the edge) and ``attached``.
    """
    if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        if isinstance(points, gpd.GeoDataFrame):
            points = points.geometry
        if points.crs is not None and network.crs is not None:
            projected(gpd.GeoDataFrame(geometry=points), "points")
            if not points.crs.equals(network.crs):
                raise AnalysisError(f"points are in {points.crs.to_string()} but the network in "
                                    f"{network.crs.to_string()}; reproject them to one CRS first")
        geoms = points.to_numpy()
    else:
        geoms = np.asarray(points, dtype=object)
    n = len(geoms)
    pts = np.asarray(geoms, dtype=object)
    not_point = (shapely.get_type_id(pts) != 0) & ~shapely.is_missing(pts)
    if not_point.any():
        pts = pts.copy()
        pts[not_point] = shapely.point_on_surface(pts[not_point])
    edge = np.full(n, -1, np.int64)
    dist = np.full(n, np.inf)
    okg = ~shapely.is_missing(pts) & ~shapely.is_empty(pts)
    if okg.any() and network.n_edges:
        where = np.flatnonzero(okg)
        (pi, ei), d = network.edge_tree.query_nearest(pts[where], max_distance=max_snap_m,
                                                      return_distance=True, all_matches=False)
        edge[where[pi]] = ei
        dist[where[pi]] = d
    att = edge >= 0
    offset = np.full(n, np.nan)
    if att.any():
        offset[att] = shapely.line_locate_point(network.geometry[edge[att]], pts[att])
    return pd.DataFrame({"edge": edge, "offset_m": offset, "snap_m": dist, "attached": att})


def insert_points(network: Network, snaps: pd.DataFrame) -> tuple[Network, np.ndarray]:
    """Split edges at snapped points so that each attached point is a node.

    Returns the new network (node ids of the old network are kept, new nodes appended) and the
    node id of every row of ``snaps`` (-1 where the point was not attached). Points that fall
    on the same spot share a node; a point at an edge's end uses that end node.
    """
    node_of = np.full(len(snaps), -1, np.int64)
    att = snaps["attached"].to_numpy()
    if not att.any():
        return network, node_of
    e = snaps["edge"].to_numpy()[att]
    L = network.length[e]
    t = np.clip(snaps["offset_m"].to_numpy()[att], 0, L)
    at_u, at_v = t <= 1e-6, t >= L - 1e-6
    res = np.where(at_u, network.u[e], np.where(at_v, network.v[e], -1))
    mid = ~(at_u | at_v)
    if mid.any():
        em, tm = e[mid], t[mid]
        pairs, inv = np.unique(np.c_[em, tm], axis=0, return_inverse=True)
        inv = inv.ravel()
        pe, pt = pairs[:, 0].astype(np.int64), pairs[:, 1]  # sorted by edge then offset
        new_ids = network.n_nodes + np.arange(len(pairs))
        res[np.flatnonzero(mid)] = new_ids[inv]
        new_xy = shapely.get_coordinates(shapely.line_interpolate_point(network.geometry[pe], pt))
        # pieces: one ending at each new node, plus one last piece per split edge
        first_in_edge = np.r_[True, pe[1:] != pe[:-1]]
        last_in_edge = np.r_[pe[1:] != pe[:-1], True]
        start_t = np.where(first_in_edge, 0.0, np.r_[0.0, pt[:-1]])
        start_n = np.where(first_in_edge, network.u[pe], np.r_[0, new_ids[:-1]])
        p_edge = np.r_[pe, pe[last_in_edge]]
        p_s = np.r_[start_t, pt[last_in_edge]]
        p_e = np.r_[pt, network.length[pe[last_in_edge]]]
        p_u = np.r_[start_n, new_ids[last_in_edge]]
        p_v = np.r_[new_ids, network.v[pe[last_in_edge]]]
        p_geom = substrings(network.geometry[p_edge], p_s, p_e)
        ok = np.array([g is not None for g in p_geom])
        # zero-length pieces cannot happen (offsets are unique and strictly inside), but be safe
        p_edge, p_u, p_v, p_geom = p_edge[ok], p_u[ok], p_v[ok], p_geom[ok]
        split = np.zeros(network.n_edges, bool)
        split[pe] = True
        keep = ~split
        network = Network(
            nodes=np.vstack([network.nodes, new_xy]),
            u=np.r_[network.u[keep], p_u], v=np.r_[network.v[keep], p_v],
            length=np.r_[network.length[keep], shapely.length(p_geom)],
            geometry=np.r_[network.geometry[keep], p_geom],
            line=np.r_[network.line[keep], network.line[p_edge]],
            lines=network.lines, crs=network.crs, parent=network, split_edges=np.flatnonzero(split),
        )
    node_of[np.flatnonzero(att)] = res
    return network, node_of


# ------------------------------------------------------------------------------------ distances
def nearest_distances(network: Network, sources: np.ndarray, *, limit_m: float = np.inf
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Network distance (metres) from every node to its nearest source, in one Dijkstra pass.

    Returns ``(dist, nearest)``: ``dist`` is ``inf`` beyond ``limit_m`` or when unreachable,
    ``nearest`` is the position in ``sources`` of the nearest source (-1 when none).
    """
    sources = np.asarray(sources, np.int64)
    sources = sources[sources >= 0]
    n = network.n_nodes
    if len(sources) == 0:
        return np.full(n, np.inf), np.full(n, -1, np.int64)
    dist, _, src = csgraph.dijkstra(network.graph, directed=False, indices=np.unique(sources),
                                    min_only=True, limit=limit_m, return_predecessors=True)
    pos = np.full(n, -1, np.int64)
    pos[sources[::-1]] = np.arange(len(sources))[::-1]  # first occurrence wins
    nearest = np.where(src >= 0, pos[np.maximum(src, 0)], -1)
    return dist, nearest


def _balls(network: Network, xy: np.ndarray, r: float) -> list:
    """Node ids within ``r`` of each point; reuses the parent network's k-d tree when there is one."""
    root, n0 = network, network.n_nodes
    while root.parent is not None and "node_tree" not in root.__dict__:
        root = root.parent
    if root is network or "node_tree" not in root.__dict__:
        return list(network.node_tree.query_ball_point(xy, r))
    n0 = root.n_nodes
    old = root.node_tree.query_ball_point(xy, r)
    extra = network.nodes[n0:]
    if len(extra) == 0:
        return list(old)
    new = cKDTree(extra).query_ball_point(xy, r)
    return [np.r_[np.asarray(a, np.int64), np.asarray(b, np.int64) + n0] for a, b in zip(old, new, strict=True)]


def reach(network: Network, sources: np.ndarray, *, limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances from each source to every node within ``limit_m`` metres along the network.

    All sources are searched at once: a label-correcting expansion (Bellman-Ford rounds over
    (source, node) labels, vectorised with numpy) that only ever touches labels within the
    limit, so the cost grows with the size of the neighbourhoods, not with sources × nodes, and
    there is no Python loop over sources. Exact: a label stops changing once no shorter path
    within the limit exists.

    Returns
    -------
    (k, node, dist) : flat arrays; ``k`` is the position of the source in ``sources``.
    """
    sources = np.asarray(sources, np.int64)
    ok = np.flatnonzero(sources >= 0)
    if len(ok) == 0:
        e = np.array([], np.int64)
        return e, e, np.array([], float)
    G = network.graph
    indptr, indices, data = G.indptr, G.indices, G.data.astype(float)
    N = np.int64(network.n_nodes)
    # distinct source nodes searched once, results copied to every position that names them
    uniq, inv = np.unique(sources[ok], return_inverse=True)
    best_key = np.arange(len(uniq), dtype=np.int64) * N + uniq  # sorted: key = source index · N + node
    best_d = np.zeros(len(uniq))
    fk, fn, fd = np.arange(len(uniq), dtype=np.int64), uniq.copy(), np.zeros(len(uniq))
    tol = 1e-9
    while len(fn):
        cnt = indptr[fn + 1] - indptr[fn]
        tot = int(cnt.sum())
        if tot == 0:
            break
        rep = np.repeat(np.arange(len(fn)), cnt)
        pos = np.repeat(indptr[fn] - np.cumsum(cnt) + cnt, cnt) + np.arange(tot)
        nd = fd[rep] + data[pos]
        keep = nd <= limit_m
        ck = fk[rep[keep]] * N + indices[pos[keep]]
        cd = nd[keep]
        if len(ck) == 0:
            break
        # best candidate per label
        order = np.lexsort((cd, ck))
        ck, cd = ck[order], cd[order]
        first = np.r_[True, ck[1:] != ck[:-1]]
        ck, cd = ck[first], cd[first]
        # compare with the labels so far
        at = np.searchsorted(best_key, ck)
        at_c = np.minimum(at, len(best_key) - 1)
        found = best_key[at_c] == ck
        better = ~found | (cd < best_d[at_c] - tol)
        if not better.any():
            break
        upd = found & better
        best_d[at_c[upd]] = cd[upd]
        new = ~found
        if new.any():
            best_key = np.r_[best_key, ck[new]]
            best_d = np.r_[best_d, cd[new]]
            o = np.argsort(best_key, kind="stable")
            best_key, best_d = best_key[o], best_d[o]
        fk, fn, fd = ck[better] // N, ck[better] % N, cd[better]
    src_idx, node = best_key // N, best_key % N
    # expand to every position of ``sources`` naming each distinct node
    by_src = np.argsort(src_idx, kind="stable")
    src_idx, node, dist = src_idx[by_src], node[by_src], best_d[by_src]
    start = np.searchsorted(src_idx, np.arange(len(uniq) + 1))
    cnt = np.diff(start)[inv]
    take = np.repeat(start[:-1][inv] - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
    k = np.repeat(ok, cnt)
    return k, node[take], dist[take]


def edge_reach(network: Network, node_dist: np.ndarray, *, radius_m: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """How far into each edge a radius reaches from each end.

    Given the distance of every node (metres, ``inf`` if not reached), returns ``(from_u, from_v)``:
    the metres of the edge covered from its ``u`` end and from its ``v`` end (0 … length).
    The edge is fully covered when ``from_u + from_v >= length``.
    """
    L = network.length
    du, dv = node_dist[network.u], node_dist[network.v]
    a = np.clip(radius_m - du, 0, L)
    b = np.clip(radius_m - dv, 0, L)
    a[~np.isfinite(du)] = 0
    b[~np.isfinite(dv)] = 0
    return a, b
