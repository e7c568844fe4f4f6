"""Reported problems as an analysis: routing to grids and units, and the 责任清单.

The case rules (statuses, steps, deadlines, open/overdue and the "as of" instant) are
:mod:`sanigrid.layers.cases`; this module applies them.
"""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import pandas as pd

from sanigrid.geo.grids import assign_grid
from sanigrid.layers.cases import PRIORITY, is_open, overdue
from sanigrid.layers.export import OVERDUE_HEADERS
from sanigrid.layers.settings import Settings


def assign(problems: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, settings: Settings) -> gpd.GeoDataFrame:
    """Fill ``grid_code`` by location and ``unit``: the category's unit if it routes elsewhere, else
    the grid's lead unit. Returns a new frame; CRS and index kept."""
    out = problems.copy()
    out["grid_code"] = assign_grid(problems, grids)
    lead = dict(zip(grids["code"], grids.get("lead_unit", pd.Series(index=grids.index, dtype=object)),
                    strict=True))
    route = {c.name: c.route_to for c in settings.problems.categories if c.route_to}
    grid_unit = out["grid_code"].map(lead)
    out["unit"] = out["category"].map(route).where(out["category"].isin(list(route)), grid_unit)
    out["unit"] = out["unit"].astype("object").where(out["unit"].notna(), None)
    return out


RESPONSIBILITY_HEADERS = {
    "problem_id": "编号", "category": "问题类别", "description": "问题描述", "status": "状态",
    "reported_at": "上报时间", "deadline": "处置时限", **OVERDUE_HEADERS,
    "grid_code": "网格编码", "unit": "责任单位", "address": "地址", "open": "未结案数",
    "overdue_count": "逾期数", "max_days_overdue": "最长逾期天数", "grid_name": "网格名称",
    "lead_unit": "牵头单位", PRIORITY: "督办",
}


def responsibility_list(problems: gpd.GeoDataFrame, *, as_of: datetime,
                        grids: gpd.GeoDataFrame | None = None) -> dict[str, pd.DataFrame]:
    """责任清单: the problems open at ``as_of``, per grid and responsible unit.

    Returns ``{sheet name: frame}`` for :func:`layers.export.write_xlsx`: a summary sheet 汇总 (one
    row per grid and unit: open, overdue, longest overdue in days) and one sheet per grid
    (``网格<code>``) listing its open problems, overdue ones first (most days overdue first), with
    deadline, days overdue and location (points; the export adds 经度/纬度). Problems without a grid
    go to a sheet 未分网格. ``problems`` needs ``deadline``, ``grid_code`` and ``unit`` (fill them
    with :func:`layers.cases.fill_deadlines` and :func:`assign` first). Use :data:`RESPONSIBILITY_HEADERS` as headers.
    """
    open_ = is_open(problems, as_of=as_of)
    p = problems[open_.to_numpy()].copy()
    od = overdue(p, as_of=as_of)
    p["overdue"] = od["overdue"].map({True: "是", False: "否"})
    p["days_overdue"] = od["days_overdue"]
    if PRIORITY in p:
        p[PRIORITY] = p[PRIORITY].fillna(False).astype(bool).map({True: "是", False: "否"})
    p["grid_code"] = p["grid_code"].astype("object").where(p["grid_code"].notna(), "未分网格")
    p["unit"] = p["unit"].astype("object").where(p["unit"].notna(), "未指定")
    cols = [c for c in ("problem_id", PRIORITY, "category", "description", "status", "reported_at", "deadline",
                        "overdue", "days_overdue", "grid_code", "unit", "address") if c in p]
    p = p.sort_values(["grid_code", "days_overdue", "deadline"], ascending=[True, False, True])
    grp = p.groupby(["grid_code", "unit"])
    summary = pd.DataFrame({
        "open": grp.size(),
        "overdue_count": grp["overdue"].agg(lambda s: int((s == "是").sum())),
        "max_days_overdue": grp["days_overdue"].max(),
    }).reset_index()
    if grids is not None and len(grids) and "code" in grids:
        info = pd.DataFrame({"grid_code": grids["code"].astype(str),
                             "grid_name": grids["name"] if "name" in grids else None,
                             "lead_unit": grids["lead_unit"] if "lead_unit" in grids else None})
        summary = summary.merge(info, on="grid_code", how="left")
        summary = summary[["grid_code", "grid_name", "lead_unit", "unit", "open", "overdue_count",
                           "max_days_overdue"]]
    summary = summary.sort_values(["overdue_count", "open"], ascending=False).reset_index(drop=True)
    sheets: dict[str, pd.DataFrame] = {"汇总": summary}
    for code, part in p.groupby("grid_code", sort=True):
        name = "未分网格" if code == "未分网格" else f"网格{code}"
        sheets[name] = gpd.GeoDataFrame(part[cols], geometry=part.geometry, crs=problems.crs) \
            if isinstance(problems, gpd.GeoDataFrame) else part[cols]
    return sheets
