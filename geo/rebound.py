"""Rebound (反弹): a fixed problem that comes back.

A rebound is a new report of the **same category** within ``radius_m`` metres of a problem that was
closed (结案) at most ``window_days`` days before the new report (``0 < reported_at − closed_at ≤
window``). Both thresholds are settings (``[rebound]``). Each new report links to **at most one**
earlier closed case: the one closed most recently before it (nearest in time), then the nearest in
space, then the smaller id; so there are never more links than reports. Reports in a default-geocode
pile (:func:`layers.piles.find_piles`, the ``[piles]`` settings) are left out on both sides: a pile
is one point for thousands of places, and every report on it would "rebound" every other. A closed
problem with at least one link "rebounded".

Rates (per grid of the closed problem, and per category): ``rebounded / closed`` over the problems
closed in the period. A place that rebounded more than once is a chain of links (a closed problem
came back, the new report was closed and came back again, or several reports came back at one spot):
the connected components of the link graph with two or more links.

Linear in the reports for a given density: new reports are taken in blocks of one window, each
against a k-d tree of the cases closed in that block and the window before it, and only the best
candidate of each report is kept. Projected CRS in metres; inputs are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from sanigrid.geo._checks import projected
from sanigrid.layers.piles import find_piles

PAIR_COLUMNS = ["category", "closed_id", "new_id", "closed_at", "reported_at", "days", "distance_m", "grid_code"]


def _empty_pairs(crs: object) -> gpd.GeoDataFrame:
    cols = {c: pd.Series([], dtype="object") for c in PAIR_COLUMNS}
    for c in ("closed_at", "reported_at"):
        cols[c] = pd.Series([], dtype="datetime64[ms]")
    for c in ("days", "distance_m"):
        cols[c] = pd.Series([], dtype="float64")
    for c in ("closed_id", "new_id"):
        cols[c] = pd.Series([], dtype="int64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


@dataclass(frozen=True)
class ReboundResult:
    """Links (layer ``rebounds``), rates per grid and per category, and repeat places."""

    pairs: gpd.GeoDataFrame
    by_grid: pd.DataFrame
    by_category: pd.DataFrame
    places: gpd.GeoDataFrame


def rebound_pairs(problems: gpd.GeoDataFrame, *, radius_m: float, window_days: float,
                  as_of: datetime | None = None, since: datetime | None = None,
                  pile_min_count: int | None = None, pile_tolerance_m: float = 1.0) -> gpd.GeoDataFrame:
    """The (closed problem, new report) links: the ``rebounds`` layer (see the module docstring).

    ``problems`` needs ``problem_id``, ``category``, ``reported_at``, ``closed_at`` and point
    geometries in a projected CRS (metres). Reports after ``as_of`` (and closures after it) are
    ignored; with ``since``, only links whose new report came on or after it are returned. With
    ``pile_min_count``, reports in a pile (that many within ``pile_tolerance_m`` of one point) are
    left out. Each link is a LineString from the closed problem to the new report, with both ids,
    the closing and reporting times, ``days`` between them, ``distance_m`` and the closed problem's
    ``grid_code``.
    """
    projected(problems, "problems")
    p = problems
    rep = pd.to_datetime(p["reported_at"]).to_numpy(dtype="datetime64[ms]")
    closed = pd.to_datetime(p["closed_at"]).to_numpy(dtype="datetime64[ms]")
    if as_of is not None:
        t = np.datetime64(pd.Timestamp(as_of).to_datetime64(), "ms")
        closed = np.where(closed <= t, closed, np.datetime64("NaT"))
        valid = rep <= t
    else:
        valid = ~np.isnat(rep)
    geom = p.geometry.to_numpy()
    xy = np.column_stack([shapely.get_x(geom), shapely.get_y(geom)])
    ok = valid & np.isfinite(xy).all(axis=1)
    if pile_min_count is not None and ok.any():
        piles = find_piles(np.where(ok[:, None], xy, np.nan), min_count=pile_min_count,
                           tolerance_m=pile_tolerance_m)
        ok &= ~piles.in_pile
    ids = p["problem_id"].to_numpy() if "problem_id" in p else np.arange(len(p))
    cats = p["category"].astype("object").to_numpy()
    grid = p["grid_code"].astype("object").to_numpy() if "grid_code" in p else np.full(len(p), None)
    window = np.timedelta64(int(round(window_days * 86_400_000)), "ms")
    codes, _ = pd.factorize(pd.Series(cats, dtype="object"))
    ok &= codes >= 0
    new = np.flatnonzero(ok)
    if since is not None:
        new = new[rep[new] >= np.datetime64(pd.Timestamp(since).to_datetime64(), "ms")]
    src = np.flatnonzero(ok & ~np.isnat(closed))
    if len(src) == 0 or len(new) == 0:
        return _empty_pairs(p.crs)
    # the category code is a third coordinate, far apart: one k-d tree for all categories
    origin = xy[ok].min(axis=0)
    far = 10.0 * radius_m + 1.0
    pts = np.column_stack([xy - origin, np.where(codes >= 0, codes, 0) * far])
    new = new[np.argsort(rep[new], kind="stable")]
    src = src[np.argsort(closed[src], kind="stable")]
    t0 = rep[new[0]]
    block = np.maximum((rep[new] - t0) // window, 0)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    for b in np.unique(block):
        js = new[block == b]
        lo, hi = t0 + b * window - window, t0 + (b + 1) * window
        a0, a1 = np.searchsorted(closed[src], [lo, hi])
        cs = src[a0:a1]
        if not len(cs):
            continue
        dm = cKDTree(pts[cs]).sparse_distance_matrix(cKDTree(pts[js]), radius_m, output_type="ndarray")
        i, j, d = cs[dm["i"]], js[dm["j"]], dm["v"]
        gap = rep[j] - closed[i]
        keep = (i != j) & (gap > np.timedelta64(0, "ms")) & (gap <= window)
        i, j, d, gap = i[keep], j[keep], d[keep], gap[keep]
        if not len(i):
            continue
        best = np.lexsort((ids[i], d, gap.astype("int64"), j))  # per new report: nearest in time, then space
        i, j, d = i[best], j[best], d[best]
        first = np.r_[True, j[1:] != j[:-1]]
        found_i.append(i[first])
        found_j.append(j[first])
        found_d.append(d[first])
    if not found_i:
        return _empty_pairs(p.crs)
    i, j, d = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    lines = shapely.linestrings(np.stack([xy[i], xy[j]], axis=1))
    out = gpd.GeoDataFrame({
        "category": cats[i], "closed_id": ids[i], "new_id": ids[j],
        "closed_at": closed[i], "reported_at": rep[j],
        "days": (rep[j] - closed[i]) / np.timedelta64(1, "D"), "distance_m": d, "grid_code": grid[i],
    }, geometry=lines, crs=p.crs)
    return out.sort_values(["closed_at", "closed_id", "new_id"]).reset_index(drop=True)


def rebounds(problems: gpd.GeoDataFrame, *, radius_m: float, window_days: float,
             as_of: datetime | None = None, since: datetime | None = None,
             pile_min_count: int | None = None, pile_tolerance_m: float = 1.0) -> ReboundResult:
    """Rebound links, rates and repeat places (see the module docstring).

    Links are those of :func:`rebound_pairs` (new reports in ``[since, as_of]``, piles left out
    with ``pile_min_count``). Rates count the problems closed in ``[since, as_of]`` (all closed
    ones when not given): ``closed``, ``rebounded`` (closed problems with a link) and ``rate``.
    """
    pairs = rebound_pairs(problems, radius_m=radius_m, window_days=window_days, as_of=as_of, since=since,
                          pile_min_count=pile_min_count, pile_tolerance_m=pile_tolerance_m)
    closed_at = pd.to_datetime(problems["closed_at"])
    in_period = closed_at.notna()
    if as_of is not None:
        in_period &= closed_at <= pd.Timestamp(as_of)
    if since is not None:
        in_period &= closed_at >= pd.Timestamp(since)
    ids = problems["problem_id"] if "problem_id" in problems else pd.Series(np.arange(len(problems)),
                                                                             index=problems.index)
    base = pd.DataFrame({
        "grid_code": problems["grid_code"] if "grid_code" in problems else None,
        "category": problems["category"],
        "rebounded": ids.isin(set(pairs["closed_id"])),
    })[in_period.to_numpy()]

    def rate(by: str) -> pd.DataFrame:
        g = base.dropna(subset=[by]).groupby(by)
        out = pd.DataFrame({"closed": g.size(), "rebounded": g["rebounded"].sum().astype("int64")})
        out["rate"] = out["rebounded"] / out["closed"]
        return out.reset_index().sort_values(["rate", "closed"], ascending=[False, False]).reset_index(drop=True)

    return ReboundResult(pairs=pairs, by_grid=rate("grid_code"), by_category=rate("category"),
                         places=repeat_places(pairs))


def repeat_places(pairs: gpd.GeoDataFrame, *, min_links: int = 2) -> gpd.GeoDataFrame:
    """Places that rebounded more than once: connected chains of links with ≥ ``min_links`` links.

    One point per place (the mean of the problems involved) with ``place``, ``rebounds`` (links),
    ``problems`` (ids joined by ``、``), ``category``, ``grid_code``, ``first_closed``, ``last_report``.
    """
    cols = ["place", "rebounds", "problems", "category", "grid_code", "first_closed", "last_report"]
    if len(pairs) == 0:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=pairs.crs)
    nodes, inv = np.unique(np.concatenate([pairs["closed_id"].to_numpy(), pairs["new_id"].to_numpy()]),
                           return_inverse=True)
    k = len(pairs)
    a, b = inv[:k], inv[k:]
    g = sparse.coo_matrix((np.ones(k), (a, b)), shape=(len(nodes), len(nodes)))
    _, comp = connected_components(g, directed=False)
    link_comp = comp[a]
    n_links = np.bincount(link_comp, minlength=comp.max() + 1)
    keep = n_links[link_comp] >= min_links
    if not keep.any():
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=pairs.crs)
    coords = shapely.get_coordinates(pairs.geometry.to_numpy()[keep]).reshape(-1, 2, 2)
    df = pd.DataFrame({"comp": link_comp[keep], "category": pairs["category"].to_numpy()[keep],
                       "grid_code": pairs["grid_code"].to_numpy()[keep],
                       "closed_at": pairs["closed_at"].to_numpy()[keep],
                       "reported_at": pairs["reported_at"].to_numpy()[keep],
                       "x": coords[:, :, 0].mean(axis=1), "y": coords[:, :, 1].mean(axis=1)})
    grp = df.groupby("comp")
    out = pd.DataFrame({
        "rebounds": grp.size(),
        "category": grp["category"].first(),  # links join reports of one category only
        "first_closed": grp["closed_at"].min(), "last_report": grp["reported_at"].max(),
        "x": grp["x"].mean(), "y": grp["y"].mean(),
    })
    gc = df[["comp", "grid_code"]].dropna().drop_duplicates().sort_values(["comp", "grid_code"])
    out["grid_code"] = _join(gc["comp"].to_numpy(), gc["grid_code"].astype(str).to_numpy()).reindex(
        out.index).fillna("")
    in_kept = np.isin(comp, out.index.to_numpy())
    order = np.lexsort((nodes[in_kept], comp[in_kept]))
    out["problems"] = _join(comp[in_kept][order], nodes[in_kept][order].astype(str)).reindex(out.index)
    out = out.sort_values(["rebounds", "last_report"], ascending=[False, False])
    out = out.reset_index(drop=True)
    out.insert(0, "place", np.arange(1, len(out) + 1))
    geom = shapely.points(out["x"].to_numpy(), out["y"].to_numpy())
    return gpd.GeoDataFrame(out[cols], geometry=geom, crs=pairs.crs)


def _join(groups: np.ndarray, texts: np.ndarray, sep: str = "、") -> pd.Series:
    """``sep``-joined texts per group (``groups`` sorted), indexed by group."""
    if len(groups) == 0:
        return pd.Series([], dtype="object")
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    joined = np.add.reduceat(np.array([t + sep for t in texts], dtype=object), starts)
    return pd.Series([j[:-len(sep)] for j in joined], index=groups[starts], dtype="object")
