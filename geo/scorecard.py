"""Grid scorecard (网格排名通报): indicators per grid, a composite score and a rank.

For a period (the calendar month or ISO week holding the instant just before ``as_of``; a period
ends at ``as_of``), per grid:

* ``problems_per_km`` — reports in the period per km of street and alley in the grid (exposure);
  without streets, per 1,000 households (``grids.households``); without either, per km² of grid.
* ``on_time_rate`` — 按期结案率: of the problems closed in the period, the share closed by their
  deadline.
* ``overdue`` — problems open and past their deadline at ``as_of`` (scored per unit of exposure).
* ``rebound_rate`` — of the problems closed in the period, the share with a rebound (see
  :mod:`geo.rebound`) by ``as_of``.
* ``coverage`` — when the coverage analysis has run: share of the grid's street length not in a
  coverage gap (averaged over facility kinds), or a per-grid table given by the caller.
* ``hardening_rate`` — 硬化率: hardened share of the grid's alley length (``alleys.hardened``).
* ``facade_rate`` — 立面粉刷覆盖率: painted/renovated share of the grid's street facades (layer
  ``facades``), each facade weighed by its surveyed ``area_m2`` where given, else by its frontage (a
  line's length, half a polygon's perimeter); see :func:`facade_rate`.
* ``components_good`` — 部件完好率: share of the grid's street furniture (layer ``components``) in good
  repair (完好), by count.

Small grids must not win or lose by chance, so rates are **empirical-Bayes shrinkage estimates**
(posterior means under a conjugate prior centred on the county-wide value and worth
``settings.scorecard.prior_strength`` observations):

* proportions (on-time, rebound): beta-binomial, prior ``Beta(k·p̄, k·(1−p̄))``, estimate
  ``(x + k·p̄)/(n + k)``, 90 % interval from the ``Beta(x + k·p̄, n − x + k·(1−p̄))`` posterior;
* rates per exposure (problems, overdue): gamma-Poisson, prior ``Gamma(k, k/r̄)``, estimate
  ``(x + k)/(E + k/r̄)``, 90 % interval from the gamma posterior.

A grid with one case closed on time is therefore scored close to the county's rate, not 100 %.
Coverage, hardening, facades and components are measured over the whole grid (a census, not a sample)
and not shrunk.

Scores (0–100, higher is better): ``100·rate`` for on-time, ``100·(1−rate)`` for rebound,
``100·share`` for coverage, hardening, facades and components, and for the two per-exposure rates a min-max scale
over the grids ``100·(max − v)/(max − min)``. The composite is the weighted mean of the available
scores with ``settings.scorecard.weights`` (an indicator missing for a grid drops out with its
weight); rank 1 is the best score (ties share the better rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import special

from sanigrid.geo._checks import projected
from sanigrid.geo._errors import AnalysisError
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.rebound import rebound_pairs
from sanigrid.layers.cases import closed_on_time, fill_deadlines, is_overdue
from sanigrid.layers.catalogue import COMPONENT_CONDITIONS
from sanigrid.layers.settings import Settings

INDICATORS = ("problems_per_km", "on_time_rate", "overdue", "rebound_rate", "coverage", "hardening_rate",
              "facade_rate", "components_good")
INTERVAL = 0.90
ZH = {
    "rank": "排名", "code": "网格编码", "name": "网格名称", "lead_unit": "牵头单位", "score": "综合得分",
    "reports": "问题数", "exposure": "基数", "problems_per_km": "每公里问题数(收缩)",
    "problems_per_km_raw": "每公里问题数(原始)", "problems_lo": "问题率下限", "problems_hi": "问题率上限",
    "closed": "结案数", "on_time": "按期结案数", "on_time_rate": "按期结案率(收缩)",
    "on_time_rate_raw": "按期结案率(原始)", "on_time_lo": "按期结案率下限", "on_time_hi": "按期结案率上限",
    "overdue": "逾期数", "overdue_per_km": "每公里逾期数(收缩)",
    "rebounded": "反弹数", "rebound_rate": "反弹率(收缩)", "rebound_rate_raw": "反弹率(原始)",
    "rebound_lo": "反弹率下限", "rebound_hi": "反弹率上限",
    "coverage": "设施覆盖率", "hardening_rate": "背街小巷硬化率", "facade_rate": "立面粉刷覆盖率",
    "components_good": "部件完好率",
    "prev_rank": "上期排名", "rank_change": "名次变化", "prev_score": "上期得分", "score_change": "得分变化",
}


@dataclass(frozen=True)
class ScorecardResult:
    """The ranked table (one row per grid, with geometry: layer ``scorecard``) and its parameters."""

    grids: gpd.GeoDataFrame
    period: tuple[pd.Timestamp, pd.Timestamp]
    previous: tuple[pd.Timestamp, pd.Timestamp]
    params: dict[str, Any]


def period_bounds(as_of: datetime, period: str = "month") -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(start, end)`` of the period ending at ``as_of``: its calendar month (or ISO week, or
    quarter) holding the instant just before ``as_of``."""
    end = pd.Timestamp(as_of)
    t = end - pd.Timedelta(milliseconds=1)
    if period == "month":
        start = t.to_period("M").start_time
    elif period == "week":
        start = t.to_period("W-SUN").start_time
    elif period == "quarter":
        start = t.to_period("Q").start_time
    else:
        raise AnalysisError(f"unknown period '{period}'; use month, week or quarter")
    return start, end


def previous_period(start: pd.Timestamp, period: str = "month") -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole period before the one starting at ``start``."""
    return period_bounds(start, period)[0], start


def shrink_proportion(x: np.ndarray, n: np.ndarray, *, prior_strength: float,
                      interval: float = INTERVAL) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Beta-binomial empirical-Bayes estimate of ``x/n`` per group: ``(estimate, lo, hi, p̄)``.

    The prior is centred on the pooled share ``p̄ = Σx/Σn`` and worth ``prior_strength`` trials;
    a group with ``n = 0`` gets ``p̄`` and the prior's interval.
    """
    x, n = np.asarray(x, dtype="float64"), np.asarray(n, dtype="float64")
    pbar = float(x.sum() / n.sum()) if n.sum() > 0 else np.nan
    if not np.isfinite(pbar):
        nan = np.full(len(x), np.nan)
        return nan, nan, nan, pbar
    pc = min(max(pbar, 1e-6), 1 - 1e-6)
    a, b = x + prior_strength * pc, n - x + prior_strength * (1 - pc)
    tail = (1 - interval) / 2
    # the beta quantiles (what scipy.stats.beta.ppf returns, bit for bit, without scipy.stats' ~1 s import)
    return a / (a + b), special.betaincinv(a, b, tail), special.betaincinv(a, b, 1 - tail), pbar


def shrink_rate(x: np.ndarray, exposure: np.ndarray, *, prior_strength: float,
                interval: float = INTERVAL) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Gamma-Poisson empirical-Bayes estimate of ``x/exposure`` per group: ``(estimate, lo, hi, r̄)``.

    The prior ``Gamma(k, k/r̄)`` is centred on the pooled rate ``r̄ = Σx/ΣE`` and worth
    ``k = prior_strength`` events.
    """
    x, e = np.asarray(x, dtype="float64"), np.asarray(exposure, dtype="float64")
    rbar = float(x.sum() / e.sum()) if e.sum() > 0 else np.nan
    if not np.isfinite(rbar) or rbar <= 0:
        est = np.where(e > 0, x / np.where(e > 0, e, 1), np.nan) if np.isfinite(rbar) else np.full(len(x), np.nan)
        return est, est, est, rbar
    shape, rate = x + prior_strength, e + prior_strength / rbar
    tail = (1 - interval) / 2
    # the gamma quantiles as scipy.stats.gamma.ppf(q, shape, scale=1 / rate) computes them
    scale = 1 / rate
    return shape / rate, special.gammaincinv(shape, tail) * scale, special.gammaincinv(shape, 1 - tail) * scale, rbar


def street_km(grids: gpd.GeoDataFrame, lines: gpd.GeoDataFrame | None, *, field: str = "code") -> pd.Series:
    """Length (km) of ``lines`` inside each grid, on the grids' index (lines cut at grid edges)."""
    if lines is None or len(lines) == 0:
        return pd.Series(0.0, index=grids.index)
    tree = shapely.STRtree(lines.geometry.to_numpy())
    gi, li = tree.query(grids.geometry.to_numpy(), predicate="intersects")
    inter = shapely.intersection(lines.geometry.to_numpy()[li], grids.geometry.to_numpy()[gi])
    km = pd.Series(shapely.length(inter) / 1000.0).groupby(gi).sum()
    return pd.Series(km.reindex(np.arange(len(grids)), fill_value=0.0).to_numpy(), index=grids.index)


def hardening_rate(grids: gpd.GeoDataFrame, alleys: gpd.GeoDataFrame | None) -> pd.Series:
    """硬化率: hardened share of the alley length in each grid (NaN where a grid has no alleys)."""
    if alleys is None or len(alleys) == 0 or "hardened" not in alleys:
        return pd.Series(np.nan, index=grids.index)
    total = street_km(grids, alleys)
    hard = alleys[alleys["hardened"].fillna(False).astype(bool)]
    done = street_km(grids, hard)
    return (done / total.where(total > 0)).astype("float64")


def _grid_of(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Grid code of each feature: its ``grid_code`` where that is one of the grids', else by location."""
    codes = grids["code"].astype(str)
    given = features["grid_code"].astype("object") if "grid_code" in features else pd.Series(
        None, index=features.index, dtype="object")
    ok = given.notna() & given.astype(str).isin(set(codes))
    out = given.where(ok, None).astype("object")
    if (~ok).any():
        out[~ok] = assign_grid(features[~ok.to_numpy()], grids).to_numpy()
    return out.to_numpy()


def facade_weight(facades: gpd.GeoDataFrame) -> pd.Series:
    """The measure of each facade (on its index): ``area_m2`` where given and positive, else its frontage
    in metres (a line's length; a polygon's half perimeter, the street side of a thin facade strip)."""
    geoms = facades.geometry.to_numpy()
    polygon = np.isin(shapely.get_type_id(geoms), (3, 6))
    frontage = np.where(polygon, shapely.length(geoms) / 2.0, shapely.length(geoms))
    if "area_m2" in facades:
        area = pd.to_numeric(facades["area_m2"], errors="coerce").to_numpy(dtype="float64")
        frontage = np.where(np.isfinite(area) & (area > 0), area, frontage)
    return pd.Series(frontage, index=facades.index, dtype="float64")


def facade_rate(grids: gpd.GeoDataFrame, facades: gpd.GeoDataFrame | None) -> pd.Series:
    """立面粉刷覆盖率: painted share of the facades in each grid, weighed by :func:`facade_weight`
    (NaN where a grid has no facades). A facade belongs to the grid of its ``grid_code``, else to the
    grid holding its midpoint (lines) or a point inside it (polygons). Projected CRS (metres)."""
    if facades is None or len(facades) == 0 or "painted" not in facades:
        return pd.Series(np.nan, index=grids.index)
    w = facade_weight(facades).to_numpy()
    painted = facades["painted"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    table = pd.DataFrame({"grid": _grid_of(facades, grids), "w": w, "painted": np.where(painted, w, 0.0)})
    sums = table.dropna(subset=["grid"]).groupby("grid")[["w", "painted"]].sum()
    share = (sums["painted"] / sums["w"].where(sums["w"] > 0)).reindex(grids["code"].astype(str))
    return pd.Series(share.to_numpy(dtype="float64"), index=grids.index)


def components_good(grids: gpd.GeoDataFrame, components: gpd.GeoDataFrame | None) -> pd.Series:
    """部件完好率: share of the street furniture in each grid whose ``condition`` is the first of
    :data:`layers.catalogue.COMPONENT_CONDITIONS` (完好), by count (NaN where a grid has none)."""
    if components is None or len(components) == 0 or "condition" not in components:
        return pd.Series(np.nan, index=grids.index)
    cond = components["condition"].astype("object")
    known = cond.isin(COMPONENT_CONDITIONS).to_numpy()
    table = pd.DataFrame({"grid": _grid_of(components, grids), "good": (cond == COMPONENT_CONDITIONS[0]).to_numpy()})
    table = table[known].dropna(subset=["grid"])
    share = table.groupby("grid")["good"].mean().reindex(grids["code"].astype(str))
    return pd.Series(share.to_numpy(dtype="float64"), index=grids.index)


ZONE_HEADERS = {"name": "片区", "zone_type": "片区类型", "facades": "立面数", "facade_m": "立面量",
                "painted_m": "已粉刷量", "facade_rate": "立面粉刷覆盖率(%)", "components": "部件数",
                "components_good": "部件完好率(%)"}


def zone_table(zones: gpd.GeoDataFrame, facades: gpd.GeoDataFrame | None,
               components: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Facades and street furniture per 城中村/城乡结合部 zone (layer ``zones``): count, measure
    (:func:`facade_weight`), painted measure, 立面粉刷覆盖率 and 部件完好率 in %, one row per zone in the
    zones' order, Chinese headers (:data:`ZONE_HEADERS`). A facade or component belongs to the zone that
    holds its midpoint / a point inside it (the first zone listed where zones overlap)."""
    z = zones.reset_index(drop=True)
    keys = pd.DataFrame({"code": [str(i) for i in range(len(z))]}, index=z.index)
    zg = gpd.GeoDataFrame(keys, geometry=z.geometry.to_numpy(), crs=z.crs)
    out = pd.DataFrame({"name": z["name"] if "name" in z else "", "zone_type": z.get("zone_type", "")})
    if facades is not None and len(facades):
        w = facade_weight(facades).to_numpy()
        painted = facades["painted"].astype("boolean").fillna(False).to_numpy(dtype=bool) \
            if "painted" in facades else np.zeros(len(facades), dtype=bool)
        where = assign_grid(facades, zg).to_numpy()
        t = pd.DataFrame({"zone": where, "w": w, "p": np.where(painted, w, 0.0)}).dropna(subset=["zone"])
        sums = t.groupby("zone").agg(facades=("w", "size"), facade_m=("w", "sum"), painted_m=("p", "sum"))
        sums = sums.reindex(keys["code"])
        out["facades"] = sums["facades"].fillna(0).astype("int64").to_numpy()
        out["facade_m"] = sums["facade_m"].fillna(0.0).round(1).to_numpy()
        out["painted_m"] = sums["painted_m"].fillna(0.0).round(1).to_numpy()
        out["facade_rate"] = (100 * sums["painted_m"] / sums["facade_m"].where(sums["facade_m"] > 0)).round(1) \
            .to_numpy()
    if components is not None and len(components) and "condition" in components:
        where = assign_grid(components, zg).to_numpy()
        good = (components["condition"].astype("object") == COMPONENT_CONDITIONS[0]).to_numpy()
        t = pd.DataFrame({"zone": where, "good": good}).dropna(subset=["zone"])
        sums = t.groupby("zone")["good"].agg(["size", "mean"]).reindex(keys["code"])
        out["components"] = sums["size"].fillna(0).astype("int64").to_numpy()
        out["components_good"] = (100 * sums["mean"]).round(1).to_numpy()
    return out.rename(columns=ZONE_HEADERS)


def coverage_share(grids: gpd.GeoDataFrame, streets_km: pd.Series, gaps: gpd.GeoDataFrame | None) -> pd.Series:
    """Share of street length outside coverage gaps, averaged over facility kinds (NaN without gaps)."""
    if gaps is None or len(gaps) == 0:
        return pd.Series(np.nan, index=grids.index)
    kinds = gaps["facility_kind"].dropna().unique() if "facility_kind" in gaps else [None]
    shares = []
    for k in kinds:
        g = gaps if k is None else gaps[gaps["facility_kind"] == k]
        gap_km = street_km(grids, g)
        total = streets_km.to_numpy(dtype="float64")
        share = 1 - gap_km.to_numpy() / np.where(total > 0, total, np.nan)
        shares.append(pd.Series(share, index=grids.index).clip(0, 1))
    return pd.concat(shares, axis=1).mean(axis=1)


def _indicators(problems: pd.DataFrame, codes: pd.Index, exposure: pd.Series, *, start: pd.Timestamp,
                end: pd.Timestamp, settings: Settings, links: pd.DataFrame | None = None,
                key: str = "grid_code") -> pd.DataFrame:
    """Counts and shrunk rates per value of ``key`` (a grid code, or a unit) for one period."""
    k = settings.scorecard.prior_strength
    rep = pd.to_datetime(problems["reported_at"])
    closed = pd.to_datetime(problems["closed_at"])
    grid = problems[key]
    in_rep = (rep >= start) & (rep < end)
    in_closed = (closed >= start) & (closed < end)
    on_time = closed_on_time(problems).fillna(False).astype(bool)
    overdue = is_overdue(problems, as_of=end)
    if links is None:
        links = rebound_pairs(problems, radius_m=settings.rebound.radius_m,
                              window_days=settings.rebound.window_days, as_of=end,
                              pile_min_count=settings.piles.min_count, pile_tolerance_m=settings.piles.tolerance_m)
    # links known at ``end`` (a superset computed at a later date is cut back to it)
    pairs = links[(links["reported_at"] <= end) & (links["closed_at"] <= end)]
    ids = problems["problem_id"] if "problem_id" in problems else pd.Series(np.arange(len(problems)),
                                                                             index=problems.index)
    rebounded = ids.isin(set(pairs["closed_id"]))

    def count(mask: pd.Series) -> pd.Series:
        return grid[mask].value_counts().reindex(codes, fill_value=0).astype("int64")

    out = pd.DataFrame(index=codes)
    out["reports"] = count(in_rep)
    out["closed"] = count(in_closed)
    out["on_time"] = count(in_closed & on_time)
    out["overdue"] = count(overdue)
    out["rebounded"] = count(in_closed & rebounded)
    out["exposure"] = exposure.reindex(codes).to_numpy()
    return shrunk_rates(out, prior_strength=k)


def shrunk_rates(counts: pd.DataFrame, *, prior_strength: float) -> pd.DataFrame:
    """The raw, shrunk and 90 % interval rates of a table of counts, one row per group (grids, or the
    counties of a province: :mod:`geo.province`): ``reports``, ``overdue`` per ``exposure`` (gamma-Poisson)
    and ``on_time``, ``rebounded`` of ``closed`` (beta-binomial), shrunk towards the pooled value of the
    table's rows. Returns a copy with the rate columns added."""
    out = counts.copy()
    k = prior_strength
    e = out["exposure"].to_numpy()
    est, lo, hi, _ = shrink_rate(out["reports"], e, prior_strength=k)
    out["problems_per_km_raw"] = out["reports"] / out["exposure"].where(out["exposure"] > 0)
    out["problems_per_km"], out["problems_lo"], out["problems_hi"] = est, lo, hi
    out["overdue_per_km"] = shrink_rate(out["overdue"], e, prior_strength=k)[0]
    est, lo, hi, _ = shrink_proportion(out["on_time"], out["closed"], prior_strength=k)
    out["on_time_rate_raw"] = out["on_time"] / out["closed"].where(out["closed"] > 0)
    out["on_time_rate"], out["on_time_lo"], out["on_time_hi"] = est, lo, hi
    est, lo, hi, _ = shrink_proportion(out["rebounded"], out["closed"], prior_strength=k)
    out["rebound_rate_raw"] = out["rebounded"] / out["closed"].where(out["closed"] > 0)
    out["rebound_rate"], out["rebound_lo"], out["rebound_hi"] = est, lo, hi
    return out


def _minmax_good_low(v: pd.Series) -> pd.Series:
    lo, hi = v.min(), v.max()
    if not np.isfinite(lo) or hi - lo <= 0:
        return pd.Series(np.where(v.notna(), 100.0, np.nan), index=v.index)
    return 100.0 * (hi - v) / (hi - lo)


def composite(table: pd.DataFrame, weights: dict[str, float]) -> tuple[pd.Series, pd.DataFrame]:
    """Scores per indicator (0–100) and the weighted composite (see the module docstring)."""
    s = pd.DataFrame(index=table.index)
    s["problems_per_km"] = _minmax_good_low(table["problems_per_km"])
    s["on_time_rate"] = 100 * table["on_time_rate"]
    s["overdue"] = _minmax_good_low(table["overdue_per_km"])
    s["rebound_rate"] = 100 * (1 - table["rebound_rate"])
    s["coverage"] = 100 * table["coverage"]
    s["hardening_rate"] = 100 * table["hardening_rate"]
    for name in ("facade_rate", "components_good"):
        s[name] = 100 * table[name] if name in table else np.nan
    unknown = sorted(set(weights) - set(INDICATORS))
    if unknown:
        raise AnalysisError(f"[scorecard] weights has unknown indicator(s) {', '.join(unknown)}; "
                            f"known: {', '.join(INDICATORS)}")
    w = pd.Series({k: float(weights.get(k, 0.0)) for k in INDICATORS})
    avail = s.notna().astype("float64") * w
    total = avail.sum(axis=1)
    score = (s.fillna(0.0) * w).sum(axis=1) / total.where(total > 0)
    return score, s


def scorecard(problems: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, settings: Settings, as_of: datetime,
              period: str = "month", streets: gpd.GeoDataFrame | None = None,
              alleys: gpd.GeoDataFrame | None = None, gaps: gpd.GeoDataFrame | None = None,
              coverage: pd.DataFrame | None = None, links: pd.DataFrame | None = None,
              facades: gpd.GeoDataFrame | None = None,
              components: gpd.GeoDataFrame | None = None) -> ScorecardResult:
    """Rank the grids for the period ending at ``as_of`` and compare with the period before.

    ``problems`` needs ``reported_at``, ``closed_at``, ``deadline`` and point geometries (grids are
    assigned by location when ``grid_code`` is missing); ``grids`` needs ``code`` (and optionally
    ``name``, ``lead_unit``, ``households``). ``streets``/``alleys`` (lines) give the exposure in km
    and the hardening rate; ``gaps`` (layer ``coverage_gaps``) or ``coverage`` (a table with
    ``grid_code`` and ``coverage`` in 0–1) the coverage. ``links``: rebound links already computed
    with :func:`geo.rebound.rebound_pairs` at ``as_of`` or later (else computed here). ``facades``
    (``painted``, optional ``area_m2``) and ``components`` (``condition``) give 立面粉刷覆盖率 and 部件完好率
    (:func:`facade_rate`, :func:`components_good`); without them those indicators drop out. All in one
    projected CRS (metres).

    Returns the grids with ``rank``, ``score``, the indicators (raw, shrunk and 90 % interval),
    the per-indicator scores (``s_*``) and ``prev_rank``/``rank_change``/``score_change``.
    """
    projected(grids, "grids")
    if "code" not in grids:
        raise AnalysisError("grids layer has no 'code' field (网格编码); import grids with their codes")
    if grids["code"].duplicated().any():
        dup = ", ".join(sorted(grids.loc[grids["code"].duplicated(), "code"].astype(str)))
        raise AnalysisError(f"grid codes repeat in the grids layer: {dup}; make them unique")
    p = problems.copy()
    if "grid_code" not in p or p["grid_code"].isna().any():
        p["grid_code"] = p.get("grid_code", pd.Series(None, index=p.index, dtype="object"))
        missing = p["grid_code"].isna()
        if missing.any():
            p.loc[missing, "grid_code"] = assign_grid(p[missing], grids)
    p["deadline"] = fill_deadlines(p, settings=settings)
    g = grids.reset_index(drop=True)
    codes = pd.Index(g["code"].astype(str))
    p["grid_code"] = p["grid_code"].astype("object")
    lines = [x for x in (streets, alleys) if x is not None and len(x)]
    km = street_km(g, pd.concat(lines, ignore_index=True) if lines else None)
    if km.sum() > 0:
        exposure, exposure_name = km.copy(), "km"
    elif "households" in g and pd.to_numeric(g["households"], errors="coerce").fillna(0).sum() > 0:
        exposure, exposure_name = pd.to_numeric(g["households"], errors="coerce").fillna(0) / 1000.0, "千户"
    else:
        exposure, exposure_name = g.geometry.area / 1e6, "km²"
    exposure.index = codes
    start, end = period_bounds(as_of, period)
    pstart, pend = previous_period(start, period)
    if links is None:
        links = rebound_pairs(p, radius_m=settings.rebound.radius_m, window_days=settings.rebound.window_days,
                              as_of=end, pile_min_count=settings.piles.min_count,
                              pile_tolerance_m=settings.piles.tolerance_m)
    cur = _indicators(p, codes, exposure, start=start, end=end, settings=settings, links=links)
    prev = _indicators(p, codes, exposure, start=pstart, end=pend, settings=settings, links=links)
    cov = coverage_share(g, km, gaps)
    cov.index = codes
    if coverage is not None and len(coverage):
        cov = coverage.set_index(coverage["grid_code"].astype(str))["coverage"].reindex(codes).astype("float64")
    hard = hardening_rate(g, alleys)
    hard.index = codes
    facade = facade_rate(g, facades)
    facade.index = codes
    good = components_good(g, components)
    good.index = codes
    for t in (cur, prev):
        t["coverage"] = cov
        t["hardening_rate"] = hard
        t["facade_rate"] = facade
        t["components_good"] = good
    weights = settings.scorecard.weights
    cur["score"], parts = composite(cur, weights)
    prev["score"], _ = composite(prev, weights)
    for name in INDICATORS:
        cur[f"s_{name}"] = parts[name]
    cur["rank"] = cur["score"].rank(ascending=False, method="min").astype("Int64")
    prev_has_data = prev["reports"].sum() + prev["closed"].sum() > 0
    prev_rank = prev["score"].rank(ascending=False, method="min").astype("Int64")
    cur["prev_rank"] = prev_rank if prev_has_data else pd.NA
    cur["prev_score"] = prev["score"] if prev_has_data else np.nan
    cur["rank_change"] = (cur["prev_rank"] - cur["rank"]).astype("Int64")
    cur["score_change"] = cur["score"] - cur["prev_score"]
    out = g[[c for c in ("code", "name", "lead_unit") if c in g] + [g.geometry.name]].copy()
    out["code"] = out["code"].astype(str)
    out = out.merge(cur, left_on="code", right_index=True, how="left")
    out = out.sort_values(["rank", "code"]).reset_index(drop=True)
    params = {"period": period, "start": str(start), "end": str(end), "exposure": exposure_name,
              "prior_strength": settings.scorecard.prior_strength, "weights": dict(weights),
              "interval": INTERVAL, "shrinkage": "empirical Bayes: beta-binomial (shares), gamma-Poisson (rates)"}
    return ScorecardResult(grids=gpd.GeoDataFrame(out, geometry=g.geometry.name, crs=grids.crs),
                           period=(start, end), previous=(pstart, pend), params=params)


def report_table(result: ScorecardResult) -> pd.DataFrame:
    """The 排名通报 table: rank, grid, lead unit, score, each indicator with its interval, changes
    since the previous period; Chinese column names, rounded for reading."""
    g = pd.DataFrame(result.grids.drop(columns=result.grids.geometry.name))
    cols = ["rank", "code", "name", "lead_unit", "score", "prev_rank", "rank_change", "score_change",
            "reports", "exposure", "problems_per_km_raw", "problems_per_km", "problems_lo", "problems_hi",
            "closed", "on_time", "on_time_rate_raw", "on_time_rate", "on_time_lo", "on_time_hi",
            "overdue", "rebounded", "rebound_rate_raw", "rebound_rate", "rebound_lo", "rebound_hi",
            "coverage", "hardening_rate", "facade_rate", "components_good"]
    t = g[[c for c in cols if c in g]].copy()
    t = t.drop(columns=[c for c in ("facade_rate", "components_good") if c in t and t[c].isna().all()])
    pct = [c for c in t.columns if c.startswith(("on_time_rate", "on_time_lo", "on_time_hi", "rebound"))
           and c != "rebounded"] + ["coverage", "hardening_rate", "facade_rate", "components_good"]
    pct = [c for c in pct if c in t]
    for c in t.columns:
        if c in pct:
            t[c] = (100 * t[c]).round(1)
        elif t[c].dtype.kind == "f":
            t[c] = t[c].round(2)
    return t.rename(columns={c: ZH.get(c, c) + ("(%)" if c in pct else "") for c in t.columns})


# ------------------------------------------------------------------ departments (职能部门排名)
UNIT_RANKING_TABLE = "unit_ranking"  # the store's free table of the last department ranking (no geometry)
UNIT_INDICATORS = ("on_time_rate", "overdue_rate", "rebound_rate", "priority_rate")
#: headers of the department ranking: the grids' (:data:`ZH`) where a column means the same, its own where not
_UNIT_OWN_ZH = {
    "unit": "责任单位", "reports": "交办数", "open": "未结案数",
    "overdue_rate_raw": "逾期率(原始)", "overdue_rate": "逾期率(收缩)", "overdue_lo": "逾期率下限",
    "overdue_hi": "逾期率上限", "priority": "督办数", "priority_rate_raw": "督办率(原始)",
    "priority_rate": "督办率(收缩)", "priority_lo": "督办率下限", "priority_hi": "督办率上限",
}
UNIT_COLUMNS = (
    "rank", "unit", "score", "reports", "closed", "on_time", "on_time_rate_raw", "on_time_rate", "on_time_lo",
    "on_time_hi", "open", "overdue", "overdue_rate_raw", "overdue_rate", "overdue_lo", "overdue_hi", "rebounded",
    "rebound_rate_raw", "rebound_rate", "rebound_lo", "rebound_hi", "priority", "priority_rate_raw",
    "priority_rate", "priority_lo", "priority_hi", "prev_rank", "rank_change", "prev_score", "score_change",
)
UNIT_ZH = {c: _UNIT_OWN_ZH.get(c) or ZH[c] for c in UNIT_COLUMNS}


@dataclass(frozen=True)
class UnitRanking:
    """The department ranking (one row per responsible unit, no geometry) and its parameters."""

    units: pd.DataFrame
    period: tuple[pd.Timestamp, pd.Timestamp]
    previous: tuple[pd.Timestamp, pd.Timestamp]
    params: dict[str, Any]


def _unit_indicators(p: pd.DataFrame, units: pd.Index, *, start: pd.Timestamp, end: pd.Timestamp,
                     settings: Settings, links: pd.DataFrame) -> pd.DataFrame:
    """Counts and shrunk shares per unit for one period (see :func:`unit_scorecard`)."""
    from sanigrid.layers.cases import PRIORITY, is_open

    k = settings.scorecard.prior_strength
    base = _indicators(p, units, pd.Series(1.0, index=units), start=start, end=end, settings=settings,
                       links=links, key="unit")
    out = base[["reports", "closed", "on_time", "on_time_rate_raw", "on_time_rate", "on_time_lo", "on_time_hi",
                "overdue", "rebounded", "rebound_rate_raw", "rebound_rate", "rebound_lo", "rebound_hi"]].copy()
    rep = pd.to_datetime(p["reported_at"])
    in_rep = (rep >= start) & (rep < end)
    pri = p[PRIORITY].fillna(False).astype(bool) if PRIORITY in p else pd.Series(False, index=p.index)
    unit = p["unit"]

    def count(mask: pd.Series) -> pd.Series:
        return unit[mask].value_counts().reindex(units, fill_value=0).astype("int64")

    out["open"] = count(is_open(p, as_of=end))
    out["priority"] = count(in_rep & pri)
    for name, x, n in (("overdue", "overdue", "open"), ("priority", "priority", "reports")):
        est, lo, hi, _ = shrink_proportion(out[x], out[n], prior_strength=k)
        out[f"{name}_rate_raw"] = out[x] / out[n].where(out[n] > 0)
        out[f"{name}_rate"], out[f"{name}_lo"], out[f"{name}_hi"] = est, lo, hi
    return out


def unit_composite(table: pd.DataFrame, weights: dict[str, float]) -> tuple[pd.Series, pd.DataFrame]:
    """Scores per unit indicator (0–100: ``100·rate`` for on-time, ``100·(1−rate)`` for the others)
    and their weighted mean (an indicator missing for a unit drops out with its weight)."""
    unknown = sorted(set(weights) - set(UNIT_INDICATORS))
    if unknown:
        raise AnalysisError(f"[scorecard] unit_weights has unknown indicator(s) {', '.join(unknown)}; "
                            f"known: {', '.join(UNIT_INDICATORS)}")
    s = pd.DataFrame(index=table.index)
    s["on_time_rate"] = 100 * table["on_time_rate"]
    for name in UNIT_INDICATORS[1:]:
        s[name] = 100 * (1 - table[name])
    w = pd.Series({k: float(weights.get(k, 0.0)) for k in UNIT_INDICATORS})
    total = (s.notna().astype("float64") * w).sum(axis=1)
    return (s.fillna(0.0) * w).sum(axis=1) / total.where(total > 0), s


def unit_scorecard(problems: pd.DataFrame, *, settings: Settings, as_of: datetime, period: str = "month",
                   links: pd.DataFrame | None = None) -> UnitRanking:
    """Rank the responsible units (职能部门, field ``unit``) for the period ending at ``as_of``.

    Per unit: cases assigned in the period (``reports``), 按期结案率 of those closed in the period,
    逾期率 (overdue among the unit's cases open at ``as_of``), 反弹率 of those closed in the period,
    督办率 (督办 cases among those assigned in the period). Every share is shrunk as the grid
    scorecard's are (beta-binomial towards the pooled share, ``settings.scorecard.prior_strength``
    trials, 90 % interval), so a unit with three cases neither wins nor loses by chance. The score is
    :func:`unit_composite` with ``settings.scorecard.unit_weights``; rank 1 is best. Units are those
    named on a case assigned, closed or open in the period; cases without a unit are left out.
    ``problems`` needs ``unit``, ``reported_at``, ``closed_at``, ``status`` and point geometries (for
    rebounds; ``links`` as in :func:`scorecard`).
    """
    if "unit" not in problems:
        raise AnalysisError("problems have no 'unit' field (责任单位); import or assign the units first")
    p = problems.copy()
    p["deadline"] = fill_deadlines(p, settings=settings)
    p["unit"] = p["unit"].astype("object").where(p["unit"].notna() & (p["unit"].astype(str).str.strip() != ""))
    start, end = period_bounds(as_of, period)
    pstart, pend = previous_period(start, period)
    if links is None:
        links = rebound_pairs(p, radius_m=settings.rebound.radius_m, window_days=settings.rebound.window_days,
                              as_of=end, pile_min_count=settings.piles.min_count,
                              pile_tolerance_m=settings.piles.tolerance_m)
    from sanigrid.layers.cases import is_open

    rep, closed = pd.to_datetime(p["reported_at"]), pd.to_datetime(p["closed_at"])
    active = ((rep >= start) & (rep < end)) | ((closed >= start) & (closed < end)) | is_open(p, as_of=end)
    units = pd.Index(sorted(p.loc[active & p["unit"].notna(), "unit"].astype(str).unique()), name="unit")
    p = p[p["unit"].notna()]
    cur = _unit_indicators(p, units, start=start, end=end, settings=settings, links=links)
    prev = _unit_indicators(p, units, start=pstart, end=pend, settings=settings, links=links)
    weights = settings.scorecard.unit_weights
    cur["score"], parts = unit_composite(cur, weights)
    prev["score"], _ = unit_composite(prev, weights)
    for name in UNIT_INDICATORS:
        cur[f"s_{name}"] = parts[name]
    cur["rank"] = cur["score"].rank(ascending=False, method="min").astype("Int64")
    prev_has_data = prev["reports"].sum() + prev["closed"].sum() > 0
    cur["prev_rank"] = prev["score"].rank(ascending=False, method="min").astype("Int64") if prev_has_data else pd.NA
    cur["prev_score"] = prev["score"] if prev_has_data else np.nan
    cur["rank_change"] = (cur["prev_rank"] - cur["rank"]).astype("Int64")
    cur["score_change"] = cur["score"] - cur["prev_score"]
    out = cur.reset_index().sort_values(["rank", "unit"]).reset_index(drop=True)
    params = {"by": "unit", "period": period, "start": str(start), "end": str(end),
              "prior_strength": settings.scorecard.prior_strength, "weights": dict(weights), "interval": INTERVAL,
              "shrinkage": "empirical Bayes: beta-binomial (shares)"}
    return UnitRanking(units=out, period=(start, end), previous=(pstart, pend), params=params)


def unit_report_table(units: pd.DataFrame) -> pd.DataFrame:
    """The 职能部门排名通报 table of :attr:`UnitRanking.units` (or the stored table ``unit_ranking``):
    Chinese column names, shares in %, rounded for reading."""
    cols = [c for c in UNIT_ZH if c in units]
    t = units[cols].copy()
    pct = [c for c in cols if c.endswith(("_rate", "_rate_raw", "_lo", "_hi"))]
    for c in cols:
        if c in pct:
            t[c] = (100 * t[c]).round(1)
        elif t[c].dtype.kind == "f":
            t[c] = t[c].round(2)
    return t.rename(columns={c: UNIT_ZH[c] + ("(%)" if c in pct else "") for c in cols})
