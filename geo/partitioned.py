"""A province's reports in spatial partitions (dask-geopandas, Hilbert curve), with a halo at the edges.

For what does not split by county — a prefecture centre's 10⁶–10⁷ reports in one GeoParquet or
PostGIS table — the reports are sorted along a Hilbert curve and cut into partitions of nearby
reports (:func:`partition_reports`, ``dask_geopandas.GeoDataFrame.spatial_shuffle``). Each partition
is processed on its own by the single-county functions, given the reports of the neighbouring
partitions that lie within a **halo** of its convex hull, and the results equal those of one frame
(:func:`analyse_frame`, the oracle the tests compare with):

* **grids and counties** — :func:`geo.grids.assign_grid` per partition (a point needs no neighbour);
  the county is the grid code's first six digits (the unit-grid code starts with the county code).
* **piles** — :func:`layers.piles.find_piles` is greedy (heaviest candidate first), so a pile is not
  decided locally. Each partition finds, with a halo of ``5 × tolerance_m``, the candidate cells of
  its own reports (a 3 × 3 block of ``tolerance_m`` cells holding ``min_count`` reports) and sends the
  reports of the 5 × 5 block around each: only the dense spots travel. :func:`find_piles` on those
  reports, in ``problem_id`` order and on the province's lattice origin, gives exactly the piles of
  the whole frame (every candidate and every block it looks at is complete).
* **clusters** — DBSCAN (:func:`geo.hotspots.dbscan_labels`, ``eps_m``, ``min_samples``) per
  partition on its reports and a halo of ``2 × eps_m``: a point within ``eps_m`` of the partition's
  hull then has all of its neighbours at hand, so its core status is exact, every core–core link
  from the partition's own reports is found, and a border report finds its nearest core point. Local
  clusters of two partitions that share an (exactly known) core point are one cluster (union-find
  on the few reports near the edges). Clusters that straddle an edge come out whole.
* **rebounds** — :func:`geo.rebound.rebound_pairs` per partition with a halo of ``radius_m``; a link
  belongs to the partition of its new report (each new report links to at most one closed case,
  found within ``radius_m``). Reports in a pile are left out on both sides, as in one frame.

Reports need ``problem_id`` (unique), ``category``, ``reported_at``, ``closed_at`` and point
geometries in a projected CRS (metres). Tasks run on whatever Dask scheduler is current (a
``distributed.Client`` when one is open, else Dask's threads). Nothing is global: every task gets its
inputs and thresholds as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from sanigrid.geo._checks import projected
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.hotspots import dbscan_labels
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.piles import find_piles
from sanigrid.layers.settings import Settings

COLUMNS = ("problem_id", "category", "reported_at", "closed_at")
_LIGHT = (*COLUMNS, "x", "y", "grid_code", "county_code", "partition")
COUNTY_DIGITS = 6


@dataclass(frozen=True)
class Thresholds:
    """The settings a partition needs (passed to every task, never read from a global)."""

    pile_min_count: int
    pile_tolerance_m: float
    eps_m: float
    min_samples: int
    exclude_piles: bool
    radius_m: float
    window_days: float

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(pile_min_count=settings.piles.min_count, pile_tolerance_m=settings.piles.tolerance_m,
                   eps_m=settings.hotspots.cluster_eps_m, min_samples=settings.hotspots.cluster_min_size,
                   exclude_piles=settings.hotspots.exclude_piles, radius_m=settings.rebound.radius_m,
                   window_days=settings.rebound.window_days)


@dataclass(frozen=True)
class PartitionedResult:
    """Per report (``problem_id``, ``grid_code``, ``county_code``, ``partition``, ``pile``,
    ``cluster``; -1 = none): a Dask DataFrame with one partition per spatial partition, computed when
    read or written (``reports.to_parquet(…)``), from :func:`analyse_partitioned`; a pandas frame from
    :func:`analyse_frame`. The piles (centre, ``count``), the clusters (``cluster`` from 1, largest
    first, ``count``, ``first_report``, ``last_report``, hull buffered by ``eps/2``), the rebound
    links, and per partition its own reports and the halo its clusters needed (``reports``,
    ``halo_clusters``)."""

    reports: Any
    piles: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame
    rebounds: gpd.GeoDataFrame
    partitions: pd.DataFrame

    def report_table(self) -> pd.DataFrame:
        """The per-report table in memory, in ``problem_id`` order."""
        r = self.reports.compute() if hasattr(self.reports, "compute") else self.reports
        return r.sort_values("problem_id", kind="stable").reset_index(drop=True)


def partition_reports(reports: Any, *, npartitions: int, level: int = 16) -> Any:
    """The reports (a GeoDataFrame, or a dask-geopandas frame, e.g. ``dask_geopandas.read_parquet``)
    sorted along a Hilbert curve into ``npartitions`` spatial partitions, with their convex hulls
    (``spatial_partitions``)."""
    import dask_geopandas

    if isinstance(reports, gpd.GeoDataFrame):
        projected(reports, "reports")
        reports = dask_geopandas.from_geopandas(reports, npartitions=max(1, npartitions))
    missing = [c for c in COLUMNS if c not in reports.columns]
    if missing:
        raise AnalysisError(f"reports lack the column(s) {', '.join(missing)}")
    # the task-based shuffle: distributed's peer-to-peer shuffle goes through Arrow tables and hands the
    # partitions' geometry back as WKB bytes (dask 2026.8, dask-geopandas 0.5)
    return reports.spatial_shuffle(by="hilbert", level=level, npartitions=npartitions, shuffle_method="tasks")


# ------------------------------------------------------------------ tasks (plain functions of their arguments)
def _light(part: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | None, as_of: datetime | None = None,
           number: int = 0) -> pd.DataFrame:
    """The columns the analyses need, coordinates as x/y, grid and county assigned; reports after
    ``as_of`` are not there yet."""
    if as_of is not None:
        part = part[(pd.to_datetime(part["reported_at"]) <= pd.Timestamp(as_of)).to_numpy()]
    geom = part.geometry.to_numpy()
    out = pd.DataFrame({c: part[c].to_numpy() for c in COLUMNS})
    out["x"], out["y"] = shapely.get_x(geom), shapely.get_y(geom)
    if grids is not None and len(grids):
        code = assign_grid(part, grids).to_numpy()
    else:
        code = part["grid_code"].to_numpy() if "grid_code" in part else np.full(len(part), None)
    out["grid_code"] = code
    out["county_code"] = [c[:COUNTY_DIGITS] if isinstance(c, str) else None for c in code]
    out["partition"] = number
    return out


def _near(part: pd.DataFrame, region: shapely.Geometry, distance_m: float,
          leave_out: np.ndarray | None = None) -> pd.DataFrame:
    """The rows within ``distance_m`` of ``region`` (a halo for the partition of that hull)."""
    part = _without(part, leave_out)
    if region is None or shapely.is_empty(region) or not len(part):
        return part.iloc[:0]
    pts = shapely.points(part["x"].to_numpy(), part["y"].to_numpy())
    return part[shapely.dwithin(pts, region, distance_m)]


def _without(part: pd.DataFrame, leave_out: np.ndarray | None) -> pd.DataFrame:
    """The partition's own rows, less those in ``leave_out`` (reports in a pile)."""
    if leave_out is None or not len(leave_out):
        return part
    return part[~part["problem_id"].isin(leave_out)]


def _cells(xy: np.ndarray, origin: np.ndarray, side: float) -> np.ndarray:
    return np.floor((xy - origin) / side).astype("int64")


def _pile_spots(own: pd.DataFrame, halos: list[pd.DataFrame], origin: np.ndarray, th: Thresholds) -> pd.DataFrame:
    """Reports in the 5 × 5 cell block around each candidate cell of the partition's own reports."""
    local = pd.concat([own, *halos], ignore_index=True)
    if len(local) < th.pile_min_count:
        return local.iloc[:0][["problem_id", "x", "y"]]
    xy = local[["x", "y"]].to_numpy(dtype="float64")
    tol = th.pile_tolerance_m if th.pile_tolerance_m > 0 else 1e-3
    c = _cells(xy, origin, tol)
    key = pd.MultiIndex.from_arrays([c[:, 0], c[:, 1]])
    counts = pd.Series(1, index=key).groupby(level=[0, 1]).sum()
    cx, cy = counts.index.get_level_values(0).to_numpy(), counts.index.get_level_values(1).to_numpy()
    lookup = dict(zip(zip(cx.tolist(), cy.tolist(), strict=True), counts.to_numpy().tolist(), strict=True))
    own_cells = set(zip(c[: len(own), 0].tolist(), c[: len(own), 1].tolist(), strict=True))
    spots: set[tuple[int, int]] = set()
    for i, j in own_cells:
        block = sum(lookup.get((i + di, j + dj), 0) for di in (-1, 0, 1) for dj in (-1, 0, 1))
        if block >= th.pile_min_count:
            spots.update((i + di, j + dj) for di in range(-2, 3) for dj in range(-2, 3))
    if not spots:
        return local.iloc[:0][["problem_id", "x", "y"]]
    hit = np.fromiter(((a, b) in spots for a, b in zip(c[:, 0].tolist(), c[:, 1].tolist(), strict=True)), bool,
                      len(c))
    return local.loc[hit, ["problem_id", "x", "y"]]


def _local_clusters(own: pd.DataFrame, halos: list[pd.DataFrame], region: shapely.Geometry,
                    others: list[shapely.Geometry], th: Thresholds) -> dict[str, Any]:
    """DBSCAN on the partition and its halo: own labels, partial cluster summaries, and the exactly
    known core points near the edges (with their local labels) that tie clusters across partitions."""
    local = pd.concat([own, *halos], ignore_index=True)
    n_own = len(own)
    xy = local[["x", "y"]].to_numpy(dtype="float64")
    lab = dbscan_labels(xy, eps_m=th.eps_m, min_samples=th.min_samples, workers=1)
    pts = shapely.points(xy[:, 0], xy[:, 1]) if len(xy) else np.empty(0, dtype=object)
    exact = np.zeros(len(local), bool)
    exact[:n_own] = True
    if len(local) > n_own and region is not None:
        exact[n_own:] = shapely.dwithin(pts[n_own:], region, th.eps_m)
    shared = np.zeros(len(local), bool)  # own points another partition sees as exact, and the exact halo points
    shared[n_own:] = exact[n_own:]
    for g in others:
        if g is not None and not shapely.is_empty(g) and n_own:
            shared[:n_own] |= shapely.dwithin(pts[:n_own], g, th.eps_m)
    ask = np.flatnonzero(shared & (lab >= 0))
    core = np.zeros(len(local), bool)
    if len(ask):
        n_near = cKDTree(xy).query_ball_point(xy[ask], r=th.eps_m, return_length=True)
        core[ask] = np.asarray(n_near) >= th.min_samples
    links = pd.DataFrame({"problem_id": local["problem_id"].to_numpy()[core], "label": lab[core]})
    own_lab = lab[:n_own]
    sel = own_lab >= 0
    parts = pd.DataFrame({"label": own_lab[sel], "reported_at": pd.to_datetime(own["reported_at"]).to_numpy()[sel],
                          "problem_id": own["problem_id"].to_numpy()[sel]})
    g = parts.groupby("label")
    summary = pd.DataFrame({"count": g.size(), "first_report": g["reported_at"].min(),
                            "last_report": g["reported_at"].max(), "min_id": g["problem_id"].min()})
    if len(parts):
        order = np.argsort(own_lab[sel], kind="stable")
        uniq, dense = np.unique(own_lab[sel][order], return_inverse=True)  # the groupby's sorted labels
        hull = shapely.convex_hull(shapely.multipoints(xy[:n_own][sel][order], indices=dense.ravel()))
        summary["hull"] = pd.Series(hull, index=uniq).reindex(summary.index).to_numpy()
    else:
        summary["hull"] = pd.Series([], dtype=object)
    return {"labels": pd.DataFrame({"problem_id": own["problem_id"].to_numpy(), "label": own_lab}),
            "links": links, "summary": summary.reset_index(), "halo": len(local) - n_own,
            "n_labels": int(lab.max()) + 1 if len(lab) else 0}


def _local_rebounds(own: pd.DataFrame, halos: list[pd.DataFrame], crs: Any, as_of: datetime | None,
                    th: Thresholds) -> gpd.GeoDataFrame:
    """Rebound links whose new report is the partition's own (halo: ``radius_m``)."""
    local = pd.concat([own, *halos], ignore_index=True)
    frame = gpd.GeoDataFrame(local, geometry=gpd.points_from_xy(local["x"], local["y"]), crs=crs)
    pairs = rebound_pairs(frame, radius_m=th.radius_m, window_days=th.window_days, as_of=as_of)
    return pairs[pairs["new_id"].isin(own["problem_id"])]


def _relabel(labels: pd.DataFrame, mapping: dict[int, int]) -> pd.DataFrame:
    out = labels.copy()
    out["cluster"] = out["label"].map(mapping).fillna(-1).astype("int64")
    return out.drop(columns="label")


def _origin(parts: list[pd.DataFrame]) -> np.ndarray:
    mins = [p[["x", "y"]].min().to_numpy(dtype="float64") for p in parts if len(p)]
    return np.nanmin(np.vstack(mins), axis=0) if mins else np.zeros(2)


# ------------------------------------------------------------------ the pipeline
def _neighbours(regions: list[shapely.Geometry], distance_m: float) -> list[list[int]]:
    """For each partition's hull, the other partitions whose hulls lie within ``distance_m``."""
    out: list[list[int]] = []
    for i, r in enumerate(regions):
        if r is None or shapely.is_empty(r):
            out.append([])
            continue
        out.append([j for j, g in enumerate(regions)
                    if j != i and g is not None and not shapely.is_empty(g) and shapely.dwithin(r, g, distance_m)])
    return out


def analyse_partitioned(ddf: Any, *, settings: Settings, grids: gpd.GeoDataFrame | None = None,
                        as_of: datetime | None = None) -> PartitionedResult:
    """Grids and counties, piles, clusters and rebounds of spatially partitioned reports (see the module
    docstring); ``ddf`` from :func:`partition_reports`. Equal to :func:`analyse_frame` on the same reports."""
    import dask
    import dask.dataframe as dd

    th = Thresholds.of(settings)
    crs = ddf.crs
    if grids is not None and len(grids):
        grids = grids.to_crs(crs)
    regions = list(ddf.spatial_partitions) if ddf.spatial_partitions is not None else None
    if regions is None:
        raise AnalysisError("the reports have no spatial partitions: use partition_reports first")
    grid_task = dask.delayed(grids)  # one copy in the graph, not one per partition
    # each partition is read, shuffled and assigned once, then kept (in the workers' memory on a cluster)
    light = list(dask.persist(*[dask.delayed(_light)(p, grid_task, as_of, i)
                                for i, p in enumerate(ddf.to_delayed())]))
    k = len(light)
    origin = dask.compute(dask.delayed(_origin)(light))[0]

    # piles: the dense spots travel, one find_piles over them in problem_id order on the province's origin
    h_pile = 5.0 * max(th.pile_tolerance_m, 1e-3)
    nb = _neighbours(regions, h_pile)
    spots = [dask.delayed(_pile_spots)(light[i], [dask.delayed(_near)(light[j], regions[i], h_pile) for j in nb[i]],
                                       origin, th) for i in range(k)]
    spot = pd.concat(dask.compute(*spots), ignore_index=True).drop_duplicates("problem_id")
    spot = spot.sort_values("problem_id", kind="stable").reset_index(drop=True)
    found = find_piles(spot[["x", "y"]].to_numpy(dtype="float64"), min_count=th.pile_min_count,
                       tolerance_m=th.pile_tolerance_m, origin=(float(origin[0]), float(origin[1])))
    pile_of = pd.Series(found.label, index=spot["problem_id"].to_numpy())
    pile_of = pile_of[pile_of >= 0]
    in_pile = pile_of.index.to_numpy()
    piles = gpd.GeoDataFrame({"pile": np.arange(len(found)), "count": found.count},
                             geometry=gpd.points_from_xy(found.centre[:, 0], found.centre[:, 1]) if len(found)
                             else gpd.GeoSeries([], crs=crs), crs=crs)
    drop = in_pile if th.exclude_piles else None

    # clusters: DBSCAN with a 2·eps halo, then local clusters joined through shared core points
    h_cl = 2.0 * th.eps_m
    nb = _neighbours(regions, h_cl)
    near_own = [dask.delayed(_without)(light[i], drop) for i in range(k)]  # own reports, piles left out
    local = [dask.delayed(_local_clusters)(near_own[i],
                                           [dask.delayed(_near)(light[j], regions[i], h_cl, drop) for j in nb[i]],
                                           regions[i], [regions[j] for j in nb[i]], th) for i in range(k)]
    # rebounds: a halo of radius_m; piles left out on both sides
    h_rb = th.radius_m
    nb_rb = _neighbours(regions, h_rb)
    rebound_own = [dask.delayed(_without)(light[i], in_pile) for i in range(k)]
    rb = [dask.delayed(_local_rebounds)(rebound_own[i],
                                        [dask.delayed(_near)(light[j], regions[i], h_rb, in_pile) for j in nb_rb[i]],
                                        crs, as_of, th) for i in range(k)]
    local = list(dask.persist(*local))  # the labels stay where they were computed
    small, rb_res, sizes = dask.compute([dask.delayed(_small)(r) for r in local], rb,
                                        [dask.delayed(len)(part) for part in light])
    mapping, clusters = _join_clusters(list(small), eps_m=th.eps_m, crs=crs)
    rows = [dask.delayed(_report_rows)(light[i], local[i], mapping[i], pile_of) for i in range(k)]
    reports = dd.from_delayed(rows, meta=_report_rows(pd.DataFrame(columns=list(_LIGHT)), None, {}, pile_of),
                              verify_meta=False)
    rebounds = gpd.GeoDataFrame(pd.concat(rb_res, ignore_index=True), geometry="geometry", crs=crs)
    rebounds = rebounds.sort_values(["new_id"]).reset_index(drop=True)
    parts = pd.DataFrame({"reports": sizes, "halo_clusters": [r["halo"] for r in small]})
    return PartitionedResult(reports=reports, piles=piles, clusters=clusters, rebounds=rebounds, partitions=parts)


def _small(res: dict[str, Any]) -> dict[str, Any]:
    """What travels back of a partition's clusters: the shared core points and partial summaries."""
    return {k: v for k, v in res.items() if k != "labels"}


def _report_rows(light: pd.DataFrame, res: dict[str, Any] | None, mapping: dict[int, int],
                 pile_of: pd.Series) -> pd.DataFrame:
    """A partition's reports with their grid, county, pile and cluster (-1: none)."""
    out = light[["problem_id", "grid_code", "county_code", "partition"]].copy()
    out["pile"] = out["problem_id"].map(pile_of).fillna(-1).astype("int64")
    if res is None:
        out["cluster"] = pd.Series(dtype="int64")
        return out
    labels = _relabel(res["labels"], mapping)
    cluster = out["problem_id"].map(labels.set_index("problem_id")["cluster"])
    out["cluster"] = cluster.fillna(-1).astype("int64")
    return out


def _join_clusters(local: list[dict[str, Any]], *, eps_m: float, crs: Any) -> tuple[list[dict[int, int]],
                                                                                    gpd.GeoDataFrame]:
    """Union-find over (partition, local cluster) through the core points two partitions share; the
    clusters numbered from 1 by count (largest first), then first report, then smallest id."""
    offsets = np.cumsum([0] + [max(r["n_labels"], 0) for r in local])
    n = int(offsets[-1])
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    links = pd.concat([r["links"].assign(node=r["links"]["label"] + offsets[i]) for i, r in enumerate(local)],
                      ignore_index=True)
    for _, grp in links.groupby("problem_id")["node"]:
        nodes = grp.to_numpy()
        for b in nodes[1:]:
            ra, rb = find(int(nodes[0])), find(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(a) for a in range(n)], dtype="int64")
    summ = pd.concat([r["summary"].assign(node=r["summary"]["label"] + offsets[i]) for i, r in enumerate(local)],
                     ignore_index=True)
    if not len(summ):
        empty = gpd.GeoDataFrame({"cluster": [], "count": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        return [{} for _ in local], empty
    summ["root"] = roots[summ["node"].to_numpy()]
    g = summ.groupby("root")
    table = pd.DataFrame({"count": g["count"].sum(), "first_report": g["first_report"].min(),
                          "last_report": g["last_report"].max(), "min_id": g["min_id"].min()})
    hulls = g["hull"].agg(lambda s: shapely.convex_hull(shapely.union_all(s.to_numpy())))
    table = table.sort_values(["count", "first_report", "min_id"], ascending=[False, True, True])
    number = pd.Series(np.arange(1, len(table) + 1), index=table.index)
    out = gpd.GeoDataFrame({"cluster": number.to_numpy(), "count": table["count"].to_numpy().astype("int64"),
                            "first_report": table["first_report"].to_numpy(),
                            "last_report": table["last_report"].to_numpy()},
                           geometry=shapely.buffer(hulls.reindex(table.index).to_numpy(), eps_m / 2.0, quad_segs=4),
                           crs=crs)
    mapping = []
    for i, r in enumerate(local):
        labs = r["summary"]["label"].to_numpy()
        mapping.append({int(a): int(number[roots[a + offsets[i]]]) for a in labs})
    return mapping, out


def analyse_frame(reports: gpd.GeoDataFrame, *, settings: Settings, grids: gpd.GeoDataFrame | None = None,
                  as_of: datetime | None = None) -> PartitionedResult:
    """The same results from one frame with the single-county functions (the oracle of
    :func:`analyse_partitioned`; reports taken in ``problem_id`` order)."""
    th = Thresholds.of(settings)
    p = reports.sort_values("problem_id", kind="stable").reset_index(drop=True)
    light = _light(p, grids, as_of)
    xy = light[["x", "y"]].to_numpy(dtype="float64")
    found = find_piles(xy, min_count=th.pile_min_count, tolerance_m=th.pile_tolerance_m)
    in_pile = found.label >= 0
    use = ~in_pile if th.exclude_piles else np.ones(len(p), bool)
    res = _local_clusters(light[use].reset_index(drop=True), [], None, [], th)
    mapping, clusters = _join_clusters([res], eps_m=th.eps_m, crs=p.crs)
    pile_of = pd.Series(found.label, index=light["problem_id"].to_numpy())
    out = _report_rows(light, res, mapping[0], pile_of[pile_of >= 0])
    frame = gpd.GeoDataFrame(light, geometry=gpd.points_from_xy(light["x"], light["y"]), crs=p.crs)
    rebounds = rebound_pairs(frame, radius_m=th.radius_m, window_days=th.window_days, as_of=as_of,
                             pile_min_count=th.pile_min_count, pile_tolerance_m=th.pile_tolerance_m)
    piles = gpd.GeoDataFrame({"pile": np.arange(len(found)), "count": found.count},
                             geometry=gpd.points_from_xy(found.centre[:, 0], found.centre[:, 1]) if len(found)
                             else gpd.GeoSeries([], crs=p.crs), crs=p.crs)
    return PartitionedResult(reports=out, piles=piles, clusters=clusters,
                             rebounds=rebounds.sort_values("new_id").reset_index(drop=True),
                             partitions=pd.DataFrame({"reports": [len(p)], "halo_clusters": [0]}))
