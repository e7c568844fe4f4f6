"""A province's counties ranked as the grid scorecard ranks grids (县级排名).

Two steps, so that each county can be summarised where its data is (a Dask worker) and only a row
per county travels:

* :func:`county_summary` — one county's counts for the period ending at ``as_of`` and the period
  before it: the grid scorecard (:func:`geo.scorecard.scorecard`) run with the whole county as one
  "grid", so reports, closures, on-time closures, overdue cases, rebounds and the exposure (km of
  street and alley, else thousands of households, else km²) are counted by the very rules the grids
  are; plus the census shares: coverage per facility kind (street length outside that kind's coverage
  gaps, :func:`geo.scorecard.coverage_share`), alley hardening and any other census indicator of the
  scorecard.
* :func:`rank_counties` — the counties' rates shrunk towards the province's pooled rates
  (:func:`geo.scorecard.shrunk_rates`: beta-binomial for shares, gamma-Poisson for rates per km,
  ``settings.scorecard.prior_strength``, 90 % intervals), the composite score of
  :func:`geo.scorecard.composite` with ``settings.scorecard.weights`` (coverage = the mean over the
  facility kinds), the rank (1 = best) and the change since the previous period.

Projected CRS in metres; inputs are never changed.
"""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.geo import scorecard as sc
from sanigrid.geo._checks import projected
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.settings import Settings

COUNTS = ("reports", "closed", "on_time", "overdue", "rebounded", "exposure")
ZH = {**sc.ZH, "code": "县级代码", "name": "县(市、区)", "grids": "网格数", "failed": "失败原因"}


def _coverage_column(kind: str) -> str:
    return f"coverage_{kind}"


def county_summary(problems: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, code: str, name: str,
                   settings: Settings, as_of: datetime, period: str = "month",
                   streets: gpd.GeoDataFrame | None = None, alleys: gpd.GeoDataFrame | None = None,
                   gaps: gpd.GeoDataFrame | None = None, boundary: gpd.GeoDataFrame | None = None,
                   kinds: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """One row for the county ``code``: its outline and counts (see the module docstring).

    ``problems``, ``grids``, ``streets``, ``alleys`` and ``gaps`` (layer ``coverage_gaps``) as for
    :func:`geo.scorecard.scorecard`; ``boundary`` (layer ``boundary``) is the outline when given,
    else the union of the grids. ``kinds``: the facility kinds whose coverage is reported (a kind
    without gaps has coverage 1 where it ran, NaN when ``gaps`` is None). Columns: ``code``,
    ``name``, ``grids``, ``period_start``/``period_end``, the counts of :data:`COUNTS` and
    ``prev_<count>`` for the previous period, ``coverage_<kind>``, ``coverage``, ``hardening_rate``
    (and the scorecard's other census indicators), geometry.
    """
    projected(grids, "grids")
    if not len(grids):
        raise AnalysisError(f"county {code}: layer 'grids' is empty; import the grids before ranking the county")
    if boundary is not None and len(boundary):
        area = shapely.union_all(boundary.to_crs(grids.crs).geometry.to_numpy())
    else:
        area = shapely.union_all(grids.geometry.to_numpy())
    one = gpd.GeoDataFrame({"code": [code], "name": [name]}, geometry=[area], crs=grids.crs)
    p = problems.copy()
    # a report routed to one of the county's grids counts for the county; the others are placed by location
    routed = p["grid_code"] if "grid_code" in p else pd.Series(None, index=p.index, dtype="object")
    inside = routed.astype("object").isin(set(grids["code"].astype(str))).to_numpy()
    p["grid_code"] = pd.Series(code, index=p.index, dtype="object").where(inside, None)
    start, end = sc.period_bounds(as_of, period)
    links = rebound_pairs(p, radius_m=settings.rebound.radius_m, window_days=settings.rebound.window_days,
                          as_of=end, pile_min_count=settings.piles.min_count,
                          pile_tolerance_m=settings.piles.tolerance_m)
    lines = [x for x in (streets, alleys) if x is not None and len(x)]
    common = {"settings": settings, "period": period, "streets": streets, "alleys": alleys, "links": links}
    cur = sc.scorecard(p, one, as_of=end, **common).grids
    prev = sc.scorecard(p, one, as_of=start, **common).grids
    row = cur[["code", "name", *[c for c in COUNTS if c in cur]]].copy()
    row["grids"] = len(grids)
    row["period_start"], row["period_end"] = start, end
    for c in COUNTS:
        row[f"prev_{c}"] = prev[c].to_numpy()
    for c in sc.INDICATORS:  # census shares (hardening, and any the scorecard adds), measured, not shrunk
        if c in cur and c not in ("problems_per_km", "on_time_rate", "overdue", "rebound_rate", "coverage"):
            row[c] = cur[c].to_numpy()
    km = sc.street_km(one, pd.concat(lines, ignore_index=True) if lines else None)
    shares = []
    for kind in kinds:
        if gaps is None:
            share = np.nan
        else:
            of_kind = gaps[gaps["facility_kind"].astype("object") == kind] if "facility_kind" in gaps else gaps
            share = float(sc.coverage_share(one, km, of_kind).iloc[0]) if len(of_kind) else 1.0
        row[_coverage_column(kind)] = share
        shares.append(share)
    row["coverage"] = float(np.nanmean(shares)) if np.isfinite(shares).any() else np.nan
    return gpd.GeoDataFrame(row, geometry=one.geometry.to_numpy(), crs=grids.crs)


def rank_counties(counties: gpd.GeoDataFrame, *, settings: Settings) -> gpd.GeoDataFrame:
    """Rank the rows of :func:`county_summary` (one per county, any order) against each other.

    Adds the shrunk rates with their 90 % intervals, the per-indicator scores ``s_*``, ``score``,
    ``rank`` (1 = best; ties share the better rank), ``prev_rank``/``prev_score`` (the previous
    period, ranked the same way; blank when it holds no reports or closures) and
    ``rank_change``/``score_change``. Sorted by rank.
    """
    if not len(counties):
        raise AnalysisError("no county to rank: every county failed or none was given")
    k = settings.scorecard.prior_strength
    weights = settings.scorecard.weights
    g = counties.reset_index(drop=True)
    census = [c for c in sc.INDICATORS if c in g and c not in ("problems_per_km", "on_time_rate", "overdue",
                                                                   "rebound_rate")]

    def ranked(prefix: str) -> pd.DataFrame:
        counts = pd.DataFrame({c: pd.to_numeric(g[prefix + c]).to_numpy(dtype="float64") for c in COUNTS})
        t = sc.shrunk_rates(counts, prior_strength=k)
        for c in census:
            t[c] = pd.to_numeric(g[c], errors="coerce").to_numpy(dtype="float64")
        for c in sc.INDICATORS:  # an indicator no county has drops out with its weight
            if c not in t:
                t[c] = np.nan
        t["score"], parts = sc.composite(t, weights)
        for c in sc.INDICATORS:
            t[f"s_{c}"] = parts[c]
        t["rank"] = t["score"].rank(ascending=False, method="min").astype("Int64")
        return t

    cur, prev = ranked(""), ranked("prev_")
    out = g.copy()
    for c in cur.columns:
        if c not in COUNTS:
            out[c] = cur[c].to_numpy()
    for c in COUNTS:
        out[c] = g[c].to_numpy()
    prev_has_data = float(g["prev_reports"].sum() + g["prev_closed"].sum()) > 0
    out["prev_rank"] = prev["rank"] if prev_has_data else pd.NA
    out["prev_score"] = prev["score"] if prev_has_data else np.nan
    out["prev_rank"] = out["prev_rank"].astype("Int64")
    out["rank_change"] = (out["prev_rank"] - out["rank"]).astype("Int64")
    out["score_change"] = out["score"] - out["prev_score"]
    out = out.sort_values(["rank", "code"]).reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry=counties.geometry.name, crs=counties.crs)


def province_table(ranked: gpd.GeoDataFrame, *, titles: dict[str, str]) -> pd.DataFrame:
    """The 县级排名 table: the grid report's columns (:func:`geo.scorecard.report_table`) for counties,
    then coverage per facility kind (``titles``: kind → its Chinese name), Chinese headers."""
    res = sc.ScorecardResult(grids=ranked, period=(pd.NaT, pd.NaT), previous=(pd.NaT, pd.NaT), params={})
    t = sc.report_table(res).rename(columns={sc.ZH["code"]: ZH["code"], sc.ZH["name"]: ZH["name"]})
    t.insert(3, ZH["grids"], ranked["grids"].to_numpy())
    for kind, title in titles.items():
        col = _coverage_column(kind)
        if col in ranked:
            t[f"{title}覆盖率(%)"] = (100 * pd.to_numeric(ranked[col], errors="coerce")).round(1).to_numpy()
    return t
