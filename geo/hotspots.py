"""Where reported problems cluster: density clusters, Gi* hot and cold spots, emerging hot spots, piles.

All functions work in the project's projected CRS in metres (checked) and never change their inputs.

Four pieces, each usable on its own (a spatial partition of a province can be processed alone: no
global state, every option is an argument):

* :func:`find_piles` — default-geocode piles: ``min_count`` or more reports on one coordinate
  (snapped to ``tolerance_m``), typically the county offices' address given when the real place was
  unknown. They are reported and, by default, left out of every statistic below so that they do
  not fake a hotspot.
* :func:`dbscan_labels` / :func:`clusters` — DBSCAN (Ester et al. 1996) with ``eps_m`` in metres and
  ``min_samples`` reports, computed exactly on a lattice of ``eps/√2`` cells (Gunawan 2013; Gan & Tao
  2015): a cell holding ``min_samples`` points makes all of them core points (its diagonal is eps);
  other points are counted with a k-d tree; core cells are joined when two of their core points are
  within eps (a cheap sufficient test first, an exact nearest-neighbour test for the rest); a border
  point joins the cluster of its nearest core point. The labels are those of scikit-learn's DBSCAN
  up to the numbering (border points reachable from two clusters may differ: DBSCAN leaves that to
  the visiting order). Each cluster becomes a polygon: the convex hull of its reports buffered by
  ``eps/2``.
* :func:`gi_star_lattice` / :func:`hot_spots` — Getis-Ord Gi* on a fishnet of square cells over the
  study area. Counts of reports per cell (empty cells count 0), binary distance-band weights between
  cell centres including the cell itself, the analytical z-score (identical to esda's
  ``G_Local(y, w, star=True, transform="B")``), two-sided normal p-values and the
  Benjamini-Hochberg false-discovery-rate correction as ArcGIS's Hot Spot Analysis applies it: for
  each confidence level (90, 95, 99 %) the cells whose p-value is at most the largest ``p_(k)`` with
  ``p_(k) ≤ α·k/n`` are significant at that level. Labels: ``热点99%``, ``热点95%``, ``热点90%``,
  ``冷点…`` and ``不显著``. On a lattice the weights are a fixed stencil, so the neighbourhood sums are
  a 2-D correlation (no weights object is built); :func:`lattice_weights` gives the same weights as a
  sparse matrix for checking against esda. With ``settings.hotspots.per_km_street`` the value of a
  cell is its reports per km of street and alley (cells with under a quarter cell side of street
  are left out), so that a street-dense block is not hot for its streets alone.

  Cell size, when ``settings.hotspots.cell_size_m`` is blank (:func:`choose_cell_size`): twice the
  mean nearest-neighbour distance between distinct report locations (after piles are dropped), the
  scale at which a cell holds a few reports on average, bounded to between 1/150 and 1/20 of the
  longer side of the study extent (so a town gets 20–150 cells across) and rounded to 5 m. The
  distance band, when ``band_m`` is blank, is ``cell·√2``: each cell and its 8 surrounding cells,
  which meets ArcGIS's guideline that every feature have at least 8 neighbours.
* :func:`emerging_labels` — space-time patterns. Reports are binned into weeks ending at ``as_of``
  (``settings.hotspots.weeks`` of them, oldest first). Weekly counts per cell are sparse and the
  normal approximation of Gi* then flags a cell with two reports in an empty week, so the space-time
  bins are blocks of k×k cells, k the smallest integer giving at least ``min_weekly_mean`` (1)
  report per bin and week on average (k = 1 when the data are dense enough); every cell takes
  the pattern of its bin. Gi* is computed for each week on these bins with queen weights (the bin
  and its 8 neighbours, or the distance band if larger; a space-only neighbourhood: ArcGIS's
  space-time cube also includes the previous time step, we do not), significance per week with the
  FDR rule at 90 %. The trend of each cell's weekly
  z-scores is the Mann-Kendall test (:func:`mann_kendall`, variance with the tie correction,
  continuity correction, two-sided p; a trend is significant at p < 0.05). Rules, checked in this
  order, for hot spots (cold spots mirror them with 冷点):

  - 加剧热点 intensifying: hot in ≥ 90 % of the weeks including the last, trend significantly up.
  - 减弱热点 diminishing: hot in ≥ 90 % of the weeks including the last, trend significantly down.
  - 持续热点 persistent: hot in ≥ 90 % of the weeks including the last, no significant trend.
  - 历史热点 historical: hot in ≥ 90 % of the weeks but not in the last.
  - 新热点 new: hot in the last week and in no earlier week.
  - 连续热点 consecutive: hot in an unbroken run of ≥ 2 weeks ending with the last, never before it.
  - 震荡热点 oscillating: hot in the last week, cold in some earlier week.
  - 零星热点 sporadic: hot in some weeks (< 90 %), never cold.
  - blank: no pattern. Fewer than 4 weeks of data gives no pattern at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage, sparse, special
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from sanigrid.geo._checks import projected, same_projected_crs
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.layers.cases import is_open, now
from sanigrid.layers.piles import find_piles as detect_piles
from sanigrid.layers.settings import Settings

log = logging.getLogger(__name__)

NOT_SIGNIFICANT = "不显著"
LEVELS = ((0.01, "99%"), (0.05, "95%"), (0.10, "90%"))
MIN_WEEKS = 4
MIN_REPORTS_GI = 30  # ArcGIS's minimum for a hot spot analysis


# --------------------------------------------------------------------------- piles
def find_piles(problems: gpd.GeoDataFrame, *, min_count: int, tolerance_m: float = 1.0
               ) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Default-geocode piles: ``min_count`` or more reports within ``tolerance_m`` of one point.

    The one detector of :func:`layers.piles.find_piles` (linear time), as used by the import check,
    with the thresholds of ``[piles]``. Metres, projected CRS. Returns ``(piles, in_pile)``: one
    point per pile (its centre, the coordinate most of its reports share), largest first, with
    ``pile`` (id), ``count``, ``categories`` (most frequent first) and ``first_report``/
    ``last_report``; and a boolean Series on the problems' index, true for reports in a pile.
    """
    projected(problems, "problems")
    xy = _xy(problems)
    found = detect_piles(xy, min_count=min_count, tolerance_m=tolerance_m)
    in_pile = pd.Series(found.in_pile, index=problems.index, name="in_pile")
    if not len(found):
        return gpd.GeoDataFrame({"pile": [], "count": []}, geometry=[], crs=problems.crs), in_pile
    lab = found.label
    members = lab >= 0
    df = pd.DataFrame({"pile": lab[members],
                       "category": problems["category"].to_numpy()[members] if "category" in problems else ""})
    if "reported_at" in problems:
        df["reported_at"] = pd.to_datetime(problems["reported_at"]).to_numpy()[members]
    else:
        df["reported_at"] = pd.NaT
    g = df.groupby("pile")
    top = (df.groupby(["pile", "category"]).size().rename("n").reset_index()
           .sort_values(["pile", "n", "category"], ascending=[True, False, True]).groupby("pile").head(3))
    cats = top.groupby("pile").apply(lambda t: "、".join(f"{c}({v})" for c, v in zip(t["category"], t["n"],
                                                                                   strict=True)),
                                    include_groups=False)
    k = np.arange(len(found))
    piles = gpd.GeoDataFrame({
        "pile": k + 1, "count": found.count.astype(int),
        "categories": cats.reindex(k).fillna("").to_numpy(),
        "first_report": g["reported_at"].min().reindex(k).to_numpy(),
        "last_report": g["reported_at"].max().reindex(k).to_numpy(),
    }, geometry=shapely.points(found.centre), crs=problems.crs)
    return piles, in_pile


# --------------------------------------------------------------------------- DBSCAN
def dbscan_labels(xy: np.ndarray, *, eps_m: float, min_samples: int, workers: int = -1) -> np.ndarray:
    """DBSCAN cluster label of each point (``-1`` = noise), exact, on projected coordinates.

    ``xy``: (n, 2) array in metres; ``eps_m``: neighbourhood radius (a point's own position counts,
    as in scikit-learn); ``min_samples``: points within ``eps_m`` (itself included) that make a core
    point. Memory is linear in n (no neighbour lists are stored). ``workers``: threads for the
    k-d tree queries (-1 = all cores).
    """
    xy = np.asarray(xy, dtype="float64")
    n = len(xy)
    labels = np.full(n, -1, dtype="int64")
    if n == 0:
        return labels
    if eps_m <= 0 or min_samples < 1:
        raise AnalysisError(f"DBSCAN needs eps_m > 0 and min_samples ≥ 1 (got {eps_m}, {min_samples})")
    side = eps_m / np.sqrt(2.0)
    origin = xy.min(axis=0)
    ij = np.floor((xy - origin) / side).astype("int64") + 2  # margin of 2 cells for the offsets
    stride = int(ij[:, 0].max()) + 5
    key = ij[:, 1] * stride + ij[:, 0]
    cells, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    core = counts[inv] >= min_samples
    sparse_pts = np.flatnonzero(~core)
    if len(sparse_pts):
        # queries in cell order (cache-friendly); a cell whose 5×5 block holds fewer than
        # min_samples points cannot hold a core point and is skipped
        sparse_pts = sparse_pts[np.argsort(key[sparse_pts], kind="stable")]
        block = _block_counts(cells, counts, stride)
        sparse_pts = sparse_pts[block[inv[sparse_pts]] >= min_samples]
        bounds = _count_bounds(xy, origin, eps_m, max_cells=min(12_000_000, 8 * n))
        if bounds is not None:  # decided by lower/upper bounds of the count: no query needed
            lo, hi = bounds
            sure = lo[sparse_pts] >= min_samples
            core[sparse_pts[sure]] = True
            sparse_pts = sparse_pts[~sure & (hi[sparse_pts] >= min_samples)]
        if len(sparse_pts):
            tree_all = cKDTree(xy, balanced_tree=False, compact_nodes=False)
            nb = tree_all.query_ball_point(xy[sparse_pts], eps_m, return_length=True, workers=workers)
            core[sparse_pts] = nb >= min_samples
    core_idx = np.flatnonzero(core)
    if len(core_idx) == 0:
        return labels
    # core cells and, per cell, its core points (sorted by cell)
    core_cell = inv[core_idx]
    ccells, cinv = np.unique(core_cell, return_inverse=True)
    cinv = cinv.ravel()
    m = len(ccells)
    ckeys = cells[ccells]
    order = np.argsort(cinv, kind="stable")
    pts_sorted = core_idx[order]
    cell_of_sorted = cinv[order]
    start = np.searchsorted(cell_of_sorted, np.arange(m))
    stop = np.searchsorted(cell_of_sorted, np.arange(m), side="right")
    cxy = xy[pts_sorted]
    cell_i = ckeys % stride
    cell_j = ckeys // stride
    offsets = [(dx, dy) for dy in range(-2, 3) for dx in range(-2, 3) if (dy > 0 or (dy == 0 and dx > 0))]
    offsets.sort(key=lambda d: d[0] ** 2 + d[1] ** 2)
    rows: list[np.ndarray] = [np.arange(m)]
    cols: list[np.ndarray] = [np.arange(m)]
    comp = np.arange(m)
    r2 = eps_m * eps_m * (1 + 1e-12)
    # per cell, its extreme core points in 8 directions (for the cheap sufficient test)
    dirs = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)]
    extreme = {dr: _segment_argext(cxy @ np.array(dr, dtype="float64"), start, cell_of_sorted, largest=True)
               for dr in dirs}
    for dx, dy in offsets:
        nkeys = ckeys + dy * stride + dx
        pos = np.searchsorted(ckeys, nkeys)
        pos = np.minimum(pos, m - 1)
        ok = ckeys[pos] == nkeys
        a = np.flatnonzero(ok)
        b = pos[ok]
        keep = comp[a] != comp[b]
        a, b = a[keep], b[keep]
        if len(a) == 0:
            continue
        # cheap sufficient test: the extreme core point of each cell towards the other
        toward = (int(np.sign(dx)), int(np.sign(dy)))
        gap = cxy[extreme[toward][a]] - cxy[extreme[(-toward[0], -toward[1])][b]]
        near = (gap * gap).sum(axis=1) <= r2
        joined_a, joined_b = [a[near]], [b[near]]
        a, b = a[~near], b[~near]
        if len(a):
            ea, eb = _exact_pairs(cxy, start, stop, a, b, eps_m, side, origin, cell_i, cell_j)
            joined_a.append(ea)
            joined_b.append(eb)
        rows.extend(joined_a)
        cols.extend(joined_b)
        r, c = np.concatenate(rows), np.concatenate(cols)
        graph = sparse.coo_matrix((np.ones(len(r), dtype="int8"), (r, c)), shape=(m, m)).tocsr()
        _, comp = connected_components(graph, directed=False)
    # number clusters in order of first appearance of a core point
    first = np.full(comp.max() + 1, n, dtype="int64")
    np.minimum.at(first, comp[cinv], core_idx)
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    labels[core_idx] = rank[comp[cinv]]
    # border points: the cluster of the nearest core point within eps
    others = np.flatnonzero(~core)
    if len(others):
        # only core points in cells within reach (the 5×5 block) of a non-core point go in the tree
        ocells = np.unique(key[others])
        reach = np.zeros(m, dtype=bool)
        for ddy in range(-2, 3):
            for ddx in range(-2, 3):
                nk = ocells + ddy * stride + ddx
                pos = np.minimum(np.searchsorted(ckeys, nk), m - 1)
                reach[pos[ckeys[pos] == nk]] = True
        near_core = pts_sorted[reach[cell_of_sorted]]
        if len(near_core):
            tree_core = cKDTree(xy[near_core])
            dist, nearest = tree_core.query(xy[others], k=1, distance_upper_bound=eps_m * (1 + 1e-12),
                                            workers=workers)
            hit = np.isfinite(dist)
            labels[others[hit]] = labels[near_core[nearest[hit]]]
    return labels


def _count_bounds(xy: np.ndarray, origin: np.ndarray, eps_m: float, *, max_cells: int = 12_000_000
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Lower and upper bounds of each point's eps-neighbour count from a lattice of eps/4 cells:
    cells wholly within eps of any point of the point's cell (lower), cells that may hold a point
    within eps (upper, with one ring of margin). ``None`` when the lattice would be too large."""
    h = eps_m / 4.0
    ij = np.floor((xy - origin) / h).astype("int64")
    nc, nr = int(ij[:, 0].max()) + 1, int(ij[:, 1].max()) + 1
    if nr * nc > max_cells:
        return None
    grid = np.bincount(ij[:, 1] * nc + ij[:, 0], minlength=nr * nc).astype("int32").reshape(nr, nc)
    d = np.abs(np.arange(-2, 3))
    dx, dy = np.meshgrid(d, d)
    k_lo = ((dx + 1) ** 2 + (dy + 1) ** 2 <= 16).astype("int32")  # farthest pair ≤ √13·h < eps
    d = np.abs(np.arange(-6, 7))
    dx, dy = np.meshgrid(d, d)
    k_hi = (np.maximum(dx - 2, 0) ** 2 + np.maximum(dy - 2, 0) ** 2 <= 16).astype("int32")
    lo = ndimage.correlate(grid, k_lo, mode="constant")
    hi = ndimage.correlate(grid, k_hi, mode="constant")
    return lo[ij[:, 1], ij[:, 0]], hi[ij[:, 1], ij[:, 0]]


def _block_counts(cells: np.ndarray, counts: np.ndarray, stride: int) -> np.ndarray:
    """Points in the 5×5 block of cells around each cell (an upper bound of any eps-neighbourhood)."""
    out = np.zeros(len(cells), dtype="int64")
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            nkey = cells + dy * stride + dx
            pos = np.minimum(np.searchsorted(cells, nkey), len(cells) - 1)
            out += np.where(cells[pos] == nkey, counts[pos], 0)
    return out


def _segment_argext(values: np.ndarray, start: np.ndarray, seg: np.ndarray, *, largest: bool) -> np.ndarray:
    """Index (into ``values``) of the max (or min) of each segment; ``seg`` (sorted) numbers the
    segment of each value and ``start`` is where each segment begins (all segments non-empty)."""
    v = values if largest else -values
    mx = np.maximum.reduceat(v, start)
    hit = np.flatnonzero(v == mx[seg])
    sh = seg[hit]
    first = np.ones(len(hit), dtype=bool)
    first[1:] = sh[1:] != sh[:-1]
    return hit[first]


def _exact_pairs(cxy: np.ndarray, start: np.ndarray, stop: np.ndarray, a: np.ndarray, b: np.ndarray,
                 eps_m: float, side: float, origin: np.ndarray, cell_i: np.ndarray, cell_j: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a[k], b[k]) of cells having two core points within eps (a nearest-neighbour test in
    3-D, the pair number as a far-apart third coordinate so that only points of one pair meet)."""
    far = 10.0 * eps_m + 1.0
    a_len, b_len = stop[a] - start[a], stop[b] - start[b]

    def gather(cells: np.ndarray, lens: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pair = np.repeat(np.arange(len(cells)), lens)
        idx = np.repeat(start[cells] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        p = cxy[idx] - origin
        # keep only points within eps of the other cell's box
        ox0 = (cell_i[other[pair]] - 2) * side
        oy0 = (cell_j[other[pair]] - 2) * side
        gx = np.maximum(np.maximum(ox0 - p[:, 0], p[:, 0] - ox0 - side), 0)
        gy = np.maximum(np.maximum(oy0 - p[:, 1], p[:, 1] - oy0 - side), 0)
        keep = gx * gx + gy * gy <= eps_m * eps_m * (1 + 1e-12)
        return np.column_stack([p[keep], pair[keep] * far]), pair[keep]

    pa, _ = gather(a, a_len, b)
    pb, _ = gather(b, b_len, a)
    if len(pa) == 0 or len(pb) == 0:
        return a[:0], b[:0]
    tree = cKDTree(pb)
    dist, _ = tree.query(pa, k=1, distance_upper_bound=eps_m * (1 + 1e-12))
    hit_pairs = np.unique((pa[np.isfinite(dist), 2] / far).round().astype("int64"))
    return a[hit_pairs], b[hit_pairs]


def clusters(problems: gpd.GeoDataFrame, *, eps_m: float, min_samples: int, as_of: datetime | None = None,
             grids: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Density clusters of reports as polygons (layer ``hotspot_clusters``).

    DBSCAN (see :func:`dbscan_labels`) on the reports' coordinates in metres; each cluster becomes
    the convex hull of its reports buffered by ``eps_m / 2``, with ``count``, ``top_categories``
    (three most frequent, with their share), ``first_report``/``last_report``, ``grids`` touched
    (codes joined by ``、``; from ``grid_code`` or from ``grids``) and ``open_share`` (share still
    open at ``as_of``, default: now). Sorted by count, largest first; ``cluster`` numbers from 1.
    """
    projected(problems, "problems")
    cols = ["cluster", "count", "top_categories", "first_report", "last_report", "grids", "open_share"]
    if len(problems) == 0:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=problems.crs)
    xy = _xy(problems)
    lab = dbscan_labels(xy, eps_m=eps_m, min_samples=min_samples)
    sel = lab >= 0
    if not sel.any():
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=problems.crs)
    if "grid_code" in problems and problems["grid_code"].notna().any():
        gcode = problems["grid_code"]
    elif grids is not None:
        gcode = assign_grid(problems, grids)
    else:
        gcode = pd.Series(None, index=problems.index, dtype="object")
    frame = pd.DataFrame({
        "lab": lab[sel],
        "category": problems["category"].to_numpy()[sel] if "category" in problems else "",
        "reported_at": pd.to_datetime(problems["reported_at"]).to_numpy()[sel],
        "open": is_open(problems, as_of=as_of if as_of is not None else now()).to_numpy()[sel],
        "grid": gcode.to_numpy()[sel],
    })
    g = frame.groupby("lab")
    out = pd.DataFrame({
        "count": g.size(),
        "first_report": g["reported_at"].min(),
        "last_report": g["reported_at"].max(),
        "open_share": g["open"].mean().astype("float64"),
    })
    vc = frame.groupby(["lab", "category"]).size().rename("n").reset_index()
    vc = vc.sort_values(["lab", "n", "category"], ascending=[True, False, True])
    vc["share"] = vc["n"] / vc["lab"].map(out["count"])
    top = vc.groupby("lab").head(3)
    txt = top["category"].astype(str) + "(" + (top["share"] * 100).round().astype(int).astype(str) + "%)"
    out["top_categories"] = txt.groupby(top["lab"]).agg("、".join)
    touched = frame[["lab", "grid"]].dropna().drop_duplicates().sort_values(["lab", "grid"])
    grids_touched = touched.groupby("lab")["grid"].agg("、".join)
    out["grids"] = grids_touched.reindex(out.index).fillna("")
    members = np.flatnonzero(sel)
    members = members[np.argsort(lab[members], kind="stable")]
    mp = shapely.multipoints(xy[members], indices=lab[members])
    hulls = shapely.buffer(shapely.convex_hull(mp), eps_m / 2.0, quad_segs=4)
    out = gpd.GeoDataFrame(out, geometry=hulls[out.index.to_numpy()], crs=problems.crs)
    out = out.sort_values(["count", "first_report"], ascending=[False, True]).reset_index(drop=True)
    out.insert(0, "cluster", np.arange(1, len(out) + 1))
    out["count"] = out["count"].astype("int64")
    return out[cols + ["geometry"]]


# --------------------------------------------------------------------------- Gi* on a lattice
@dataclass(frozen=True)
class Fishnet:
    """A lattice of square cells: origin (lower left, metres), cell side, shape and the study mask.

    Cell ``(r, c)`` covers ``[x0 + c·cell, x0 + (c+1)·cell) × [y0 + r·cell, y0 + (r+1)·cell)``; the
    flat index of a cell is ``r * ncols + c``; ``mask`` is true for cells in the study area.
    """

    x0: float
    y0: float
    cell_m: float
    mask: np.ndarray = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """Flat cell index of each point, ``-1`` outside the lattice or the mask."""
        nr, nc = self.shape
        c = np.floor((xy[:, 0] - self.x0) / self.cell_m).astype("int64")
        r = np.floor((xy[:, 1] - self.y0) / self.cell_m).astype("int64")
        inside = (c >= 0) & (c < nc) & (r >= 0) & (r < nr)
        flat = np.where(inside, r * nc + c, -1)
        flat[inside] = np.where(self.mask.ravel()[flat[inside]], flat[inside], -1)
        return flat

    def polygons(self) -> np.ndarray:
        """Square polygons of the cells in the mask (row-major order)."""
        r, c = np.nonzero(self.mask)
        x = self.x0 + c * self.cell_m
        y = self.y0 + r * self.cell_m
        return shapely.box(x, y, x + self.cell_m, y + self.cell_m)


def choose_cell_size(xy: np.ndarray, *, extent_m: float) -> float:
    """Fishnet cell side (metres) from the data: ``2 × mean nearest-neighbour distance`` between
    distinct report locations, bounded to ``[extent/150, extent/20]`` and rounded to 5 m
    (``extent_m``: longer side of the study area)."""
    xy = np.asarray(xy, dtype="float64")
    pts = xy[np.unique(np.round(xy / 0.01), axis=0, return_index=True)[1]] if len(xy) else xy
    lo, hi = extent_m / 150.0, extent_m / 20.0
    if len(pts) < 2:
        size = hi
    else:
        d, _ = cKDTree(pts).query(pts, k=2)
        size = float(np.clip(2.0 * d[:, 1].mean(), lo, hi))
    return max(5.0, 5.0 * round(size / 5.0))


def make_fishnet(study_area: shapely.Geometry, *, cell_m: float) -> Fishnet:
    """Cells of side ``cell_m`` whose centre lies in ``study_area`` (a polygon in metres)."""
    if cell_m <= 0:
        raise AnalysisError(f"cell size must be > 0 m (got {cell_m}); fix [hotspots] cell_size_m in sanigrid.toml")
    xmin, ymin, xmax, ymax = study_area.bounds
    nc = max(1, int(np.ceil((xmax - xmin) / cell_m)))
    nr = max(1, int(np.ceil((ymax - ymin) / cell_m)))
    if nr * nc > 20_000_000:
        raise AnalysisError(f"{nr}×{nc} cells of {cell_m:g} m is too many; set a larger [hotspots] cell_size_m")
    cx = xmin + (np.arange(nc) + 0.5) * cell_m
    cy = ymin + (np.arange(nr) + 0.5) * cell_m
    shapely.prepare(study_area)
    gx, gy = np.meshgrid(cx, cy)
    mask = shapely.contains_xy(study_area, gx, gy)
    return Fishnet(float(xmin), float(ymin), float(cell_m), mask)


def lattice_kernel(cell_m: float, band_m: float) -> np.ndarray:
    """Binary stencil of the distance band on a square lattice: 1 where the centre distance
    ``cell·√(dx²+dy²) ≤ band`` (the centre, i.e. the cell itself, included)."""
    k = int(np.floor(band_m / cell_m + 1e-9))
    d = np.arange(-k, k + 1)
    dx, dy = np.meshgrid(d, d)
    return ((dx * dx + dy * dy) * cell_m * cell_m <= band_m * band_m * (1 + 1e-9)).astype("float64")


def gi_star_lattice(values: np.ndarray, mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Analytical Gi* z-scores on a lattice (binary weights given by ``kernel``, self included).

    ``values``: (rows, cols) or (time, rows, cols) counts; ``mask``: (rows, cols) study cells (others
    are not observations and get NaN). For each slice, with ``n`` cells, mean ``x̄`` and population
    variance ``S²`` over the mask: ``z_i = (Σ_j w_ij x_j − x̄ W_i) / (S √((n W_i − W_i²)/(n−1)))``,
    ``W_i = Σ_j w_ij`` over cells in the mask. A slice with no variance gets z = 0.
    """
    v = np.asarray(values, dtype="float64")
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n < 2:
        raise AnalysisError("Gi* needs at least 2 cells in the study area; use a smaller cell size")
    y = np.where(m, v, 0.0)
    mf = m.astype("float64")
    wi = ndimage.correlate(mf, kernel, mode="constant", cval=0.0)
    kern = kernel if y.ndim == 2 else kernel[None, :, :]
    s = ndimage.correlate(y, kern, mode="constant", cval=0.0)
    axes = (-2, -1)
    mean = y.sum(axis=axes, keepdims=True) / n
    var = (y * y).sum(axis=axes, keepdims=True) / n - mean * mean
    var = np.maximum(var, 0.0)
    den = np.sqrt(var) * np.sqrt(np.maximum(wi * (n - wi), 0.0) / (n - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (s - mean * wi) / den
    z = np.where(np.isfinite(z), z, 0.0)
    return np.where(m, z, np.nan)


def lattice_weights(fishnet: Fishnet, *, band_m: float) -> sparse.csr_matrix:
    """The binary distance-band weights of the cells in the mask (self included) as a sparse
    matrix in row-major cell order: the weights :func:`gi_star_lattice` uses, for checking."""
    kern = lattice_kernel(fishnet.cell_m, band_m)
    k = kern.shape[0] // 2
    nr, nc = fishnet.shape
    ids = np.full((nr, nc), -1, dtype="int64")
    r, c = np.nonzero(fishnet.mask)
    ids[r, c] = np.arange(len(r))
    rows, cols = [], []
    for dy, dx in zip(*np.nonzero(kern), strict=True):
        rr, cc = r + dy - k, c + dx - k
        ok = (rr >= 0) & (rr < nr) & (cc >= 0) & (cc < nc)
        nb = np.full(len(r), -1)
        nb[ok] = ids[rr[ok], cc[ok]]
        good = nb >= 0
        rows.append(np.flatnonzero(good))
        cols.append(nb[good])
    rr, cc = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=(len(r), len(r)))


def gi_star(y: np.ndarray, w: sparse.spmatrix) -> np.ndarray:
    """Analytical Gi* z-scores for any binary weights ``w`` (self-weights already on the diagonal)."""
    y = np.asarray(y, dtype="float64")
    n = len(y)
    wi = np.asarray(w.sum(axis=1)).ravel()
    mean = y.mean()
    s = np.sqrt(max((y * y).mean() - mean * mean, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (w @ y - mean * wi) / (s * np.sqrt(wi * (n - wi) / (n - 1)))
    return np.where(np.isfinite(z), z, 0.0)


def p_values(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values of z-scores."""
    # the normal survival function, as scipy.stats.norm.sf computes it, without scipy.stats' ~1 s import
    return 2.0 * special.ndtr(-np.abs(z))


def significance(p: np.ndarray, *, fdr: bool = True) -> np.ndarray:
    """Confidence level reached by each test: 99, 95, 90 or 0, with the Benjamini-Hochberg false
    discovery rate applied separately at each level when ``fdr`` (as ArcGIS does); NaN p → 0."""
    p = np.asarray(p, dtype="float64")
    out = np.zeros(p.shape, dtype="int64")
    ok = np.isfinite(p)
    ps = np.sort(p[ok])
    n = len(ps)
    for alpha, name in LEVELS[::-1]:  # 90, then 95, then 99 overwrite
        if fdr and n:
            below = ps <= alpha * np.arange(1, n + 1) / n
            crit = ps[np.flatnonzero(below).max()] if below.any() else -1.0
        else:
            crit = alpha
        out[ok & (p <= crit)] = int(name[:-1])
    return out


def labels_from(z: np.ndarray, level: np.ndarray) -> np.ndarray:
    """``热点99%`` … ``冷点90%`` or ``不显著`` from z-scores and significance levels."""
    out = np.full(z.shape, NOT_SIGNIFICANT, dtype=object)
    for lv in (90, 95, 99):
        out[(level == lv) & (z > 0)] = f"热点{lv}%"
        out[(level == lv) & (z < 0)] = f"冷点{lv}%"
    return out


# --------------------------------------------------------------------------- trends
def mann_kendall(series: np.ndarray, *, continuity: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """Mann-Kendall trend test of each row of ``series`` (cells × time steps, oldest first).

    Returns ``(S, var_S, z, p)``: ``S = Σ_{i<j} sign(x_j − x_i)``, its variance under no trend
    with the tie correction ``[n(n−1)(2n+5) − Σ_t t(t−1)(2t+5)] / 18``, the normal score (with
    the continuity correction ``S ∓ 1`` unless ``continuity=False``) and its two-sided p-value.
    """
    x = np.atleast_2d(np.asarray(series, dtype="float64"))
    c, n = x.shape
    s = np.zeros(c)
    for i in range(n - 1):
        s += np.sign(x[:, i + 1:] - x[:, i:i + 1]).sum(axis=1)
    # tie groups: runs of equal values in each sorted row
    xs = np.sort(x, axis=1)
    new = np.ones((c, n), dtype=bool)
    new[:, 1:] = xs[:, 1:] != xs[:, :-1]
    flat = np.flatnonzero(new.ravel())
    lengths = np.diff(np.append(flat, c * n)).astype("float64")
    row = flat // n
    tie = np.bincount(row, weights=lengths * (lengths - 1) * (2 * lengths + 5), minlength=c)
    var = (n * (n - 1) * (2 * n + 5) - tie) / 18.0
    num = s - np.sign(s) if continuity else s
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var > 0, num / np.sqrt(var), 0.0)
    return s, var, z, p_values(z)


def emerging_labels(z_weeks: np.ndarray, level_weeks: np.ndarray, *, trend_p: float = 0.05
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Emerging hot/cold spot pattern of each cell (rules in the module docstring).

    ``z_weeks``/``level_weeks``: (cells, weeks) Gi* z-scores and significance levels, oldest week
    first. Returns ``(label, trend_z, trend_p)``.
    """
    z = np.asarray(z_weeks, dtype="float64")
    c, t = z.shape
    label = np.full(c, "", dtype=object)
    if t < MIN_WEEKS:
        return label, np.zeros(c), np.ones(c)
    _, _, tz, tp = mann_kendall(z)
    sig = np.asarray(level_weeks) >= 90
    for sign, hot in ((1, "热点"), (-1, "冷点")):
        is_hot = sig & (np.sign(z) == sign)
        is_cold = sig & (np.sign(z) == -sign)
        share = is_hot.mean(axis=1)
        last = is_hot[:, -1]
        before = is_hot[:, :-1].any(axis=1)
        ever_cold = is_cold.any(axis=1)
        # length of the unbroken run ending at the last week
        run = np.zeros(c, dtype="int64")
        alive = np.ones(c, dtype=bool)
        for k in range(t - 1, -1, -1):
            alive &= is_hot[:, k]
            run += alive
        cum = np.concatenate([np.zeros((c, 1), dtype="int64"), np.cumsum(is_hot, axis=1)], axis=1)
        hot_before_run = np.take_along_axis(cum, (t - run)[:, None], axis=1).ravel() > 0
        up = (tp < trend_p) & (tz * sign > 0)
        down = (tp < trend_p) & (tz * sign < 0)
        free = label == ""
        many = share >= 0.9
        rules = [
            (last & many & up, f"加剧{hot}"),
            (last & many & down, f"减弱{hot}"),
            (last & many, f"持续{hot}"),
            (~last & many, f"历史{hot}"),
            (last & ~before, f"新{hot}"),
            (last & (run >= 2) & ~hot_before_run, f"连续{hot}"),
            (last & ever_cold, f"震荡{hot}"),
            (is_hot.any(axis=1) & ~ever_cold, f"零星{hot}"),
        ]
        for cond, name in rules:
            hit = free & cond
            label[hit] = name
            free &= ~hit
    return label, tz, tp


# --------------------------------------------------------------------------- the analysis
@dataclass(frozen=True)
class HotspotResult:
    """Everything :func:`analyse` finds: piles, density clusters, Gi* cells and the parameters used."""

    piles: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    params: dict[str, object]


def hot_spots(problems: gpd.GeoDataFrame, *, study_area: shapely.Geometry | None = None,
              cell_size_m: float | None = None, band_m: float | None = None, fdr: bool = True,
              weeks: int = 12, as_of: datetime | None = None, min_weekly_mean: float = 1.0,
              streets: gpd.GeoDataFrame | None = None, min_street_m: float | None = None
              ) -> tuple[gpd.GeoDataFrame, dict[str, object]]:
    """Gi* hot and cold spots of report counts on a fishnet, with the emerging pattern per cell.

    ``study_area``: polygon in metres (default: the convex hull of the reports buffered by one
    cell). With ``streets`` (lines: streets and alleys), the statistic is on **reports per km of
    street** in each cell instead of counts, so that a place with many streets is not a hot spot
    for that alone; cells with less than ``min_street_m`` of street (default: a quarter of the
    cell side) are not observations and are left out (with the reports in them).
    Returns ``(cells, params)``: the ``gi_cells`` layer (cells in the study area with
    ``count``, ``rate`` (per km, with streets), ``z``, ``p``, ``label``, ``trend``, ``trend_z``,
    ``trend_p``) and the cell size, band and counts used. See the module docstring for the rules.
    """
    projected(problems, "problems")
    xy = _xy(problems)
    if len(xy) < 2:
        raise AnalysisError("hot spot analysis needs at least 2 reports (after piles are left out)")
    hull = shapely.convex_hull(shapely.multipoints(xy))
    area = study_area if study_area is not None else hull
    xmin, ymin, xmax, ymax = area.bounds
    extent = max(xmax - xmin, ymax - ymin, 1.0)
    cell = float(cell_size_m) if cell_size_m else choose_cell_size(xy, extent_m=extent)
    if study_area is None:
        area = shapely.buffer(hull, cell)
    band = float(band_m) if band_m else cell * np.sqrt(2.0)
    net = make_fishnet(area, cell_m=cell)
    nr, nc = net.shape
    street_km = None
    if streets is not None and len(streets):
        same_projected_crs(problems, streets)
        street_km = cell_line_km(net, streets)
        keep = street_km * 1000.0 >= (min_street_m if min_street_m is not None else cell / 4.0)
        net = Fishnet(net.x0, net.y0, net.cell_m, net.mask & keep)
    kern = lattice_kernel(cell, band)
    flat = net.locate(xy)
    inside = flat >= 0
    counts = np.bincount(flat[inside], minlength=nr * nc).astype("float64").reshape(nr, nc)
    values = counts if street_km is None else np.where(net.mask, counts / np.where(street_km > 0, street_km, 1), 0)
    z = gi_star_lattice(values, net.mask, kern)
    mflat = net.mask.ravel()
    zc = z.ravel()[mflat]
    p = p_values(zc)
    level = significance(p, fdr=fdr)
    trend = np.full(len(zc), "", dtype=object)
    tz = np.zeros(len(zc))
    tp = np.ones(len(zc))
    n_weeks = 0
    trend_cell = 0.0
    if weeks and "reported_at" in problems:
        t_end = pd.Timestamp(as_of) if as_of is not None else pd.to_datetime(problems["reported_at"]).max()
        age = (t_end - pd.to_datetime(problems["reported_at"])) / pd.Timedelta(days=7)
        wk = np.floor(age.to_numpy(dtype="float64"))
        span = int(np.nanmax(wk)) + 1 if np.isfinite(wk).any() else 0
        n_weeks = int(min(weeks, max(span, 0)))
        ok = inside & np.isfinite(wk) & (wk >= 0) & (wk < n_weeks)
        if n_weeks >= MIN_WEEKS and ok.any():
            # space-time bins: k×k blocks of cells so that a bin holds ≥ 1 report per week on average
            lam = ok.sum() / (n_weeks * net.mask.sum())
            k = max(1, int(np.ceil(np.sqrt(min_weekly_mean / lam))))
            kr, kc = -(-nr // k), -(-nc // k)
            rr, cc = flat[ok] // nc // k, flat[ok] % nc // k
            tidx = (n_weeks - 1 - wk[ok]).astype("int64")  # oldest first
            cube = np.bincount((tidx * kr + rr) * kc + cc, minlength=n_weeks * kr * kc)
            cube = cube.astype("float64").reshape(n_weeks, kr, kc)
            fine = np.zeros((kr * k, kc * k), dtype=bool)
            fine[:nr, :nc] = net.mask
            cmask = np.asarray(fine.reshape(kr, k, kc, k).any(axis=(1, 3)))
            if street_km is not None:  # rates per km of street in each bin
                skm = np.zeros((kr * k, kc * k))
                skm[:nr, :nc] = np.where(net.mask, street_km, 0.0)
                skm = skm.reshape(kr, k, kc, k).sum(axis=(1, 3))
                cube = np.where(cmask, cube / np.where(skm > 0, skm, 1.0), 0.0)
            kern_t = lattice_kernel(cell * k, max(band, cell * k * np.sqrt(2.0)) if k > 1 else band)
            zt = gi_star_lattice(cube, cmask, kern_t).reshape(n_weeks, -1)[:, cmask.ravel()].T
            lv = np.column_stack([significance(p_values(zt[:, j]), fdr=fdr) for j in range(n_weeks)])
            lab_c, tz_c, tp_c = emerging_labels(zt, lv)
            # every cell takes the pattern of its space-time bin
            cid = np.full(kr * kc, -1)
            cid[np.flatnonzero(cmask.ravel())] = np.arange(int(cmask.sum()))
            fr, fc = np.nonzero(net.mask)
            which = cid[(fr // k) * kc + fc // k]
            trend, tz, tp = lab_c[which], tz_c[which], tp_c[which]
            trend_cell = cell * k
    rate = values.ravel()[mflat] if street_km is not None else np.full(int(mflat.sum()), np.nan)
    cells = gpd.GeoDataFrame({
        "count": counts.ravel()[mflat], "rate": rate, "z": zc, "p": p, "label": labels_from(zc, level),
        "trend": trend, "trend_z": tz, "trend_p": tp, "cell": np.flatnonzero(mflat),
    }, geometry=net.polygons(), crs=problems.crs)
    params = {"cell_size_m": cell, "band_m": round(band, 3), "cells": int(mflat.sum()),
              "neighbours_incl_self": int(kern.sum()), "weeks": n_weeks, "trend_cell_m": trend_cell, "fdr": fdr,
              "reports": int(inside.sum()),
              "value": "reports per km of street" if street_km is not None else "reports"}
    return cells, params


def cell_line_km(net: Fishnet, lines: gpd.GeoDataFrame) -> np.ndarray:
    """Length (km) of ``lines`` inside each cell of the lattice, as a (rows, cols) array (cells
    outside the mask too; metres in, km out)."""
    nr, nc = net.shape
    x0 = net.x0 + np.arange(nc) * net.cell_m
    y0 = net.y0 + np.arange(nr) * net.cell_m
    gx, gy = np.meshgrid(x0, y0)
    boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + net.cell_m, gy.ravel() + net.cell_m)
    geoms = lines.geometry.to_numpy()
    bi, li = shapely.STRtree(geoms).query(boxes, predicate="intersects")
    length = shapely.length(shapely.intersection(geoms[li], boxes[bi]))
    return (np.bincount(bi, weights=length, minlength=nr * nc) / 1000.0).reshape(nr, nc)


def analyse(problems: gpd.GeoDataFrame, *, settings: Settings, grids: gpd.GeoDataFrame | None = None,
            as_of: datetime | None = None, since: datetime | None = None,
            categories: list[str] | None = None, streets: gpd.GeoDataFrame | None = None) -> HotspotResult:
    """Piles, density clusters and Gi* cells of the reports, with ``settings.hotspots``.

    Reports after ``as_of`` or before ``since`` and, when given, not in ``categories`` are left
    out; then piles (``[piles] min_count`` reports on one point, :func:`find_piles`) are found and, when
    ``settings.hotspots.exclude_piles``, left out of the clusters and the Gi* cells. The study area
    is the union of ``grids`` when given. With ``settings.hotspots.per_km_street`` and ``streets``
    (streets and alleys), Gi* is on reports per km of street. With fewer than 30 reports left (ArcGIS's minimum) no Gi*
    cells are computed (``params["gi_skipped"]`` says why). Projected CRS in metres.
    """
    hs = settings.hotspots
    projected(problems, "problems")
    if grids is not None and len(grids):
        same_projected_crs(problems, grids)
    sel = problems
    rep = pd.to_datetime(sel["reported_at"])
    keep = pd.Series(True, index=sel.index)
    if as_of is not None:
        keep &= rep <= pd.Timestamp(as_of)
    if since is not None:
        keep &= rep >= pd.Timestamp(since)
    if categories:
        unknown = sorted(set(categories) - set(settings.problem_categories))
        if unknown:
            raise AnalysisError(f"unknown categories {', '.join(unknown)}; known: "
                                f"{', '.join(settings.problem_categories)}")
        keep &= sel["category"].isin(categories)
    sel = sel[keep & sel.geometry.notna() & ~sel.geometry.is_empty]
    piles, in_pile = find_piles(sel, min_count=settings.piles.min_count, tolerance_m=settings.piles.tolerance_m)
    used = sel[~in_pile] if hs.exclude_piles else sel
    if in_pile.any():
        log.info("%d reports in %d default-geocode piles %s", int(in_pile.sum()), len(piles),
                 "left out" if hs.exclude_piles else "kept")
    cl = clusters(used, eps_m=hs.cluster_eps_m, min_samples=hs.cluster_min_size, as_of=as_of, grids=grids)
    area = None
    if grids is not None and len(grids):
        area = shapely.union_all(grids.geometry.to_numpy())
    if len(used) >= MIN_REPORTS_GI:
        cells, params = hot_spots(used, study_area=area, cell_size_m=hs.cell_size_m, band_m=hs.band_m,
                                  fdr=hs.fdr, weeks=hs.weeks, as_of=as_of,
                                  streets=streets if hs.per_km_street else None)
    else:  # too few for a statistic: clusters and piles are still reported
        log.warning("only %d reports: Gi* needs at least %d, no hot spot cells", len(used), MIN_REPORTS_GI)
        cells = gpd.GeoDataFrame({c: [] for c in ("count", "rate", "z", "p", "label", "trend", "trend_z", "trend_p",
                                                  "cell")},
                                 geometry=gpd.GeoSeries([], crs=problems.crs), crs=problems.crs)
        params = {"cell_size_m": 0.0, "band_m": 0.0, "cells": 0, "weeks": 0, "reports": len(used),
                  "gi_skipped": f"only {len(used)} reports; Gi* needs at least {MIN_REPORTS_GI}"}
    params.update({"piles": len(piles), "pile_reports": int(in_pile.sum()),
                   "piles_excluded": hs.exclude_piles, "eps_m": hs.cluster_eps_m,
                   "min_samples": hs.cluster_min_size, "clusters": len(cl)})
    return HotspotResult(piles=piles, clusters=cl, cells=cells, params=params)


def _xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    """(n, 2) coordinates of points (representative points of other geometries)."""
    if len(frame) == 0:
        return np.zeros((0, 2))
    geom = frame.geometry.to_numpy()
    if not (shapely.get_type_id(geom) == 0).all():
        geom = shapely.point_on_surface(geom)
    return np.column_stack([shapely.get_x(geom), shapely.get_y(geom)])
