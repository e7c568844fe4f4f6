"""Coverage now and when the facility projects are done (建设项目前后覆盖对比).

:func:`planned_coverage` runs :func:`geo.coverage.coverage` on the built facilities (now), on the
built plus every planned and under-construction one (done), and once per project on the built plus
that project alone, so that each project's own gain is known: the street length and households it
newly covers that no built facility covers. The build statuses are :mod:`layers.projects`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from sanigrid.geo.coverage import CoverageResult, coverage
from sanigrid.geo.grids import assign_grid
from sanigrid.geo.network import (
    Network,
    build_network,
    edge_reach,
    insert_points,
    nearest_distances,
    snap_points,
)
from sanigrid.layers import projects

GRID_HEADERS = {
    "grid_code": "网格编码", "street_m": "道路长度(米)", "covered_m_now": "现状覆盖长度(米)",
    "covered_m_done": "建成后覆盖长度(米)", "new_street_m": "新增覆盖街道(米)",
    "coverage_pct_now": "现状覆盖率(%)", "coverage_pct_done": "建成后覆盖率(%)", "households": "户数",
    "households_covered_now": "现状覆盖户数", "households_covered_done": "建成后覆盖户数",
    "new_households": "新增覆盖户数",
}


@dataclass(frozen=True)
class PlannedCoverage:
    """Coverage now (``now``) and when every project is done (``done``), per grid (``grids``: one row
    per grid, now and done side by side) and per project (``projects``: what each one newly covers)."""

    now: CoverageResult
    done: CoverageResult
    grids: pd.DataFrame
    projects: pd.DataFrame
    summary: dict[str, Any]


def _covered_households(res: CoverageResult) -> float:
    if res.demand is None:
        return float("nan")
    d = res.demand
    return float(d.loc[d["covered"], "households"].sum())


def _covered_m(res: CoverageResult) -> float:
    s = res.segments
    return float(s.loc[s["covered"], "length_m"].sum())


def _network_gains(net: Network, base: gpd.GeoDataFrame, pending: gpd.GeoDataFrame, now: CoverageResult, *,
                   radius_m: float, max_snap_m: float) -> list[tuple[float, float]]:
    """(street metres, households) each pending site adds to the built ones' coverage, on the network.

    The same rule as :func:`geo.coverage.coverage` (network distance within ``radius_m``, edges cut
    at the exact cut-off, a compound served when its snapped point is within the radius) without
    drawing any polygon: one Dijkstra pass bounded by the radius per project.
    """
    demand = now.demand
    pts = [base.geometry, pending.geometry] + ([demand.geometry] if demand is not None else [])
    allpts = gpd.GeoSeries(pd.concat(pts, ignore_index=True), crs=net.crs)
    net2, nodes = insert_points(net, snap_points(net, allpts, max_snap_m=max_snap_m))
    nb, npd = len(base), len(pending)
    d_built = nearest_distances(net2, nodes[:nb], limit_m=radius_m)[0]
    L = net2.length

    def covered(dist: np.ndarray) -> tuple[float, float]:
        a, b = edge_reach(net2, dist, radius_m=radius_m)
        m = float(np.minimum(a + b, L).sum())
        if demand is None:
            return m, float("nan")
        rn = nodes[nb + npd:]
        rd = np.where(rn >= 0, dist[np.maximum(rn, 0)], np.inf)
        return m, float(demand["households"].to_numpy()[rd <= radius_m].sum())

    m0, h0 = covered(d_built)
    out = []
    for i in range(npd):
        d = np.minimum(d_built, nearest_distances(net2, nodes[nb + i:nb + i + 1], limit_m=radius_m)[0])
        m, h = covered(d)
        out.append((round(m - m0, 1), h - h0))
    return out


def planned_coverage(facilities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame,
                     alleys: gpd.GeoDataFrame | None = None, *, kind: str, radius_m: float, as_of: datetime,
                     residents: gpd.GeoDataFrame | None = None, grids: gpd.GeoDataFrame | None = None,
                     network: Network | None = None, **options: Any) -> PlannedCoverage:
    """Coverage of one facility kind now and when its projects are done, per grid and per project.

    Parameters
    ----------
    facilities : every facility of the kind, with ``build_status`` (see :mod:`layers.projects`; none = 建成),
        ``planned_date`` and ``project_unit``.
    streets, alleys, residents, grids, radius_m, kind : as for :func:`geo.coverage.coverage`; one
        projected CRS in metres.
    as_of : the instant a project counts as late against its planned date.
    network : a network already built from the same streets (else built once here for every run).
    options : passed on to :func:`geo.coverage.coverage` (``euclidean``, ``max_snap_m``,
        ``buffer_m``, ``source``).

    Returns
    -------
    PlannedCoverage
        ``grids`` has, per grid, street length, covered length and coverage (%) now and done, the
        street length newly covered, households covered now and done and the households newly
        covered. ``projects`` has, per project, its name, status, planned date, unit, grid, the
        street length and households it alone adds to today's coverage, and whether it is late.
        Coverage "done" equals coverage on the same layers with every project built. Cost: two
        coverage runs, plus one Dijkstra pass bounded by the radius per project (straight-line
        mode: one coverage run per project).
    """
    net = network if network is not None else build_network(streets, alleys,
                                                             snap_tolerance_m=options.pop("snap_tolerance_m", 1.0))
    options.pop("snap_tolerance_m", None)
    run = dict(kind=kind, radius_m=radius_m, residents=residents, grids=grids, network=net, **options)
    base = projects.built(facilities)
    pending = facilities[projects.is_pending(facilities).to_numpy()]
    now = coverage(base, streets, alleys, **run)
    done = coverage(projects.when_done(facilities), streets, alleys, **run)

    # ---- per grid, now and done side by side
    a = now.grid_table.set_index("grid_code")
    b = done.grid_table.set_index("grid_code").reindex(a.index)
    t = pd.DataFrame(index=a.index)
    t["street_m"] = a["street_m"]
    t["covered_m_now"], t["covered_m_done"] = a["covered_m"], b["covered_m"]
    t["new_street_m"] = (t["covered_m_done"] - t["covered_m_now"]).round(1)
    t["coverage_pct_now"], t["coverage_pct_done"] = a["coverage_pct"], b["coverage_pct"]
    t["households"] = a["households"]
    t["households_covered_now"] = a["households"] - a["households_uncovered"]
    t["households_covered_done"] = b["households"] - b["households_uncovered"]
    t["new_households"] = t["households_covered_done"] - t["households_covered_now"]
    t = t.reset_index().sort_values(["new_street_m", "grid_code"], ascending=[False, True]).reset_index(drop=True)

    # ---- per project: what it alone adds to today's coverage
    m_now, hh_now = _covered_m(now), _covered_households(now)
    if options.get("euclidean"):
        gains = []
        for i in range(len(pending)):
            one = coverage(pd.concat([base, pending.iloc[[i]]]), streets, alleys, **run)
            gains.append((round(_covered_m(one) - m_now, 1), _covered_households(one) - hh_now))
    else:
        gains = _network_gains(net, base, pending, now, radius_m=radius_m,
                               max_snap_m=float(options.get("max_snap_m", 200.0)))
    rows = pd.DataFrame({
        "facility_kind": kind,
        "name": pending["name"].to_numpy() if "name" in pending else None,
        projects.STATUS_FIELD: projects.build_status(pending).to_numpy(),
        projects.DATE_FIELD: (pd.to_datetime(pending[projects.DATE_FIELD], errors="coerce").to_numpy()
                              if projects.DATE_FIELD in pending else pd.NaT),
        projects.UNIT_FIELD: pending[projects.UNIT_FIELD].to_numpy() if projects.UNIT_FIELD in pending else None,
        "grid_code": (assign_grid(pending, grids).to_numpy() if grids is not None and len(grids) and len(pending)
                      else None),
        "new_street_m": [g[0] for g in gains], "new_households": [g[1] for g in gains],
    })
    lt = projects.late(pending, as_of=as_of)
    rows["late"], rows["days_late"] = lt["late"].to_numpy(), lt["days_late"].to_numpy()
    rows = rows.sort_values("new_street_m", ascending=False).reset_index(drop=True)
    summary = {
        "facility_kind": kind, "radius_m": float(radius_m), "built": int(len(base)), "projects": int(len(pending)),
        "late": int(rows["late"].sum()) if len(rows) else 0,
        "coverage_pct_now": now.summary["coverage_pct"], "coverage_pct_done": done.summary["coverage_pct"],
        "covered_km_now": now.summary["covered_km"], "covered_km_done": done.summary["covered_km"],
        "new_street_km": round((_covered_m(done) - m_now) / 1000, 3),
    }
    if now.demand is not None:
        summary["households_covered_now"] = hh_now
        summary["households_covered_done"] = _covered_households(done)
        summary["new_households"] = summary["households_covered_done"] - hh_now
    else:
        rows["new_households"] = np.nan
    return PlannedCoverage(now=now, done=done, grids=t, projects=rows, summary=summary)
