"""Reported problems as an analysis: routing to grids and units, and the 责任清单.

The case rules (statuses, steps, deadlines, open/overdue and the "as of" instant) are
:mod:`sanigrid.layers.cases`; this module applies them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from sanigrid.geo.grids import assign_grid, lead_units
from sanigrid.layers.cases import PRIORITY, is_open, overdue
from sanigrid.layers.export import OVERDUE_HEADERS
from sanigrid.layers.settings import Settings


def assign(problems: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, settings: Settings) -> gpd.GeoDataFrame:
    """Fill ``grid_code`` by location and ``unit``: the category's unit if it routes elsewhere, else
    the grid's lead unit. Returns a new frame; CRS and index kept."""
    out = problems.copy()
    out["grid_code"] = assign_grid(problems, grids)
    out["unit"] = pd.Series(units(out["category"].tolist(), out["grid_code"].tolist(), lead_units(grids),
                                  settings=settings),
                            index=out.index, dtype="object")
    return out


def units(categories: list[Any], grid_codes: list[Any], lead_unit: dict[Any, Any], *,
          settings: Settings) -> list[Any]:
    """The responsible unit of each problem: its category's unit if the category routes elsewhere
    (``route_to`` in the settings), else its grid's lead unit (``lead_unit``: grid code → unit);
    ``None`` when neither is known."""
    route = {c.name: c.route_to for c in settings.problems.categories if c.route_to}
    out = [route[c] if c in route else lead_unit.get(g) for c, g in zip(categories, grid_codes, strict=True)]
    return [None if u is None or u is pd.NA or (isinstance(u, float) and u != u) else u for u in out]


RESPONSIBILITY_HEADERS = {
    "problem_id": "编号", "category": "问题类别", "description": "问题描述", "status": "状态",
    "reported_at": "上报时间", "deadline": "处置时限", **OVERDUE_HEADERS,
    "grid_code": "网格编码", "unit": "责任单位", "address": "地址", "open": "未结案数",
    "overdue_count": "逾期数", "max_days_overdue": "最长逾期天数", "grid_name": "网格名称",
    "lead_unit": "牵头单位", PRIORITY: "督办", "measure": "整改措施", "owner": "责任人", "closed_mark": "销号",
    "batch": "检查批次", "closed_at": "结案时间",
}
CLOSED_MARK = "已销号"  # how a closed item of the rectification list is marked


def tracked(problems: pd.DataFrame) -> pd.Series:
    """Items of the rectification list (整改清单): problems with a measure or from an inspection
    report; they stay on the 责任清单 after closure, marked :data:`CLOSED_MARK`."""
    out = pd.Series(False, index=problems.index)
    for col in ("measure", "batch"):
        if col in problems:
            v = problems[col].astype("object")
            out |= v.notna() & (v.astype(str).str.strip() != "")
    return out


def responsibility_list(problems: gpd.GeoDataFrame, *, as_of: datetime,
                        grids: gpd.GeoDataFrame | None = None) -> dict[str, pd.DataFrame]:
    """责任清单: the problems open at ``as_of``, per grid and responsible unit.

    Returns ``{sheet name: frame}`` for :func:`layers.export.write_xlsx`: a summary sheet 汇总 (one
    row per grid and unit: open, overdue, longest overdue in days) and one sheet per grid
    (``网格<code>``) listing its open problems, overdue ones first (most days overdue first), with
    measure (整改措施), owner (责任人), deadline, status, days overdue and location (points; the
    export adds 经度/纬度). Items of the rectification list (:func:`tracked`) closed by ``as_of``
    stay on their grid's sheet after the open ones, marked :data:`CLOSED_MARK` in column 销号.
    Problems without a grid go to a sheet 未分网格. ``problems`` needs ``deadline``, ``grid_code``
    and ``unit`` (fill them with :func:`layers.cases.fill_deadlines` and :func:`assign` first). Use
    :data:`RESPONSIBILITY_HEADERS` as headers.
    """
    open_ = is_open(problems, as_of=as_of)
    reported = pd.to_datetime(problems["reported_at"]) <= pd.Timestamp(as_of)
    keep = open_ | (tracked(problems) & reported)
    p = problems[keep.to_numpy()].copy()
    is_open_row = open_[keep].to_numpy()
    p["closed_mark"] = np.where(is_open_row, "", CLOSED_MARK)
    od = overdue(p, as_of=as_of)
    p["overdue"] = od["overdue"].map({True: "是", False: "否"})
    p["days_overdue"] = od["days_overdue"]
    if PRIORITY in p:
        p[PRIORITY] = p[PRIORITY].fillna(False).astype(bool).map({True: "是", False: "否"})
    p["grid_code"] = p["grid_code"].astype("object").where(p["grid_code"].notna(), "未分网格")
    p["unit"] = p["unit"].astype("object").where(p["unit"].notna(), "未指定")
    cols = [c for c in ("problem_id", PRIORITY, "category", "description", "measure", "unit", "owner",
                        "reported_at", "deadline", "status", "closed_mark", "overdue", "days_overdue", "closed_at",
                        "grid_code", "address", "batch") if c in p]
    if not (~pd.Series(is_open_row)).any():
        cols = [c for c in cols if c not in ("closed_mark", "closed_at")]
    p = p.sort_values(["grid_code", "closed_mark", "days_overdue", "deadline"], ascending=[True, True, False, True])
    open_rows = p[p["closed_mark"] == ""]
    grp = open_rows.groupby(["grid_code", "unit"])
    summary = pd.DataFrame({
        "open": grp.size(),
        "overdue_count": (open_rows["overdue"] == "是").groupby([open_rows["grid_code"], open_rows["unit"]]).sum(),
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
    # p is sorted by grid first: each grid's rows are one slice (no frame built per grid)
    table = gpd.GeoDataFrame(p[cols], geometry=p.geometry, crs=problems.crs) \
        if isinstance(problems, gpd.GeoDataFrame) else p[cols]
    codes = p["grid_code"].to_numpy()
    bounds = np.r_[np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else [], len(codes)]
    for start, stop in zip(bounds[:-1].astype(int), bounds[1:].astype(int), strict=True):
        code = codes[start]
        sheets["未分网格" if code == "未分网格" else f"网格{code}"] = table.iloc[start:stop]
    return sheets


# ------------------------------------------------------------------ inspection reports (暗访/督查)
PROGRESS_HEADERS = {"batch": "检查批次", "batch_date": "检查日期", "source": "来源", "items": "问题数",
                    "closed_items": "已销号", "open_items": "未销号", "overdue_items": "逾期",
                    "rebounded_items": "销号后反弹", "closed_pct": "销号率(%)", "line": "进度"}


def inspection_progress(problems: gpd.GeoDataFrame, *, as_of: datetime, settings: Settings,
                        links: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per inspection report (``batch``): its date and source, items, closed (销号), open,
    overdue (open past the deadline at ``as_of``), rebounded since (closed items re-reported nearby
    in the same category, :func:`geo.rebound.rebound_pairs` with the settings' radius and window, by
    ``as_of``) and ``line``, the one-line progress. ``problems`` needs ``batch``, ``deadline`` (filled),
    ``reported_at``, ``closed_at``, ``status`` and point geometries; ``links`` as from
    ``rebound_pairs`` at ``as_of`` or later (else computed here). Newest report first."""
    from sanigrid.geo.rebound import rebound_pairs

    cols = list(PROGRESS_HEADERS)
    if "batch" not in problems:
        return pd.DataFrame(columns=cols)
    b = problems["batch"].astype("object")
    has = b.notna() & (b.astype(str).str.strip() != "")
    if not has.any():
        return pd.DataFrame(columns=cols)
    if links is None:
        links = rebound_pairs(problems, radius_m=settings.rebound.radius_m, window_days=settings.rebound.window_days,
                              as_of=as_of, pile_min_count=settings.piles.min_count,
                              pile_tolerance_m=settings.piles.tolerance_m)
    t = pd.Timestamp(as_of)
    pairs = links[(pd.to_datetime(links["reported_at"]) <= t) & (pd.to_datetime(links["closed_at"]) <= t)]
    p = problems[has.to_numpy()]
    reported = pd.to_datetime(p["reported_at"]) <= t
    open_ = is_open(p, as_of=as_of)
    frame = pd.DataFrame({
        "batch": p["batch"].astype(str).str.strip(),
        "batch_date": pd.to_datetime(p["batch_date"], errors="coerce") if "batch_date" in p else pd.NaT,
        "source": p["source"] if "source" in p else None,
        "item": reported, "closed": reported & ~open_, "open": open_,
        "overdue": overdue(p, as_of=as_of)["overdue"],
        "rebounded": reported & ~open_ & p["problem_id"].isin(set(pairs["closed_id"])),
    })
    g = frame.groupby("batch", sort=False)
    out = pd.DataFrame({
        "batch_date": g["batch_date"].min(), "source": g["source"].agg(lambda s: "、".join(sorted(set(s.dropna())))),
        "items": g["item"].sum(), "closed_items": g["closed"].sum(), "open_items": g["open"].sum(),
        "overdue_items": g["overdue"].sum(), "rebounded_items": g["rebounded"].sum(),
    }).reset_index()
    for c in ("items", "closed_items", "open_items", "overdue_items", "rebounded_items"):
        out[c] = out[c].astype("int64")
    out["closed_pct"] = (100 * out["closed_items"] / out["items"].where(out["items"] > 0)).round(1)
    out["line"] = [progress_line(r) for r in out.to_dict("records")]
    return out.sort_values(["batch_date", "batch"], ascending=[False, True]).reset_index(drop=True)[cols]


def progress_line(row: dict) -> str:
    """The one-line progress of an inspection report (a row of :func:`inspection_progress`)."""
    when = row.get("batch_date")
    day = f" ({pd.Timestamp(when):%Y-%m-%d})" if when is not None and not pd.isna(when) else ""
    return (f"{row['batch']}{day}: {row['items']} 项, 已销号 {row['closed_items']}, 未销号 {row['open_items']}, "
            f"逾期 {row['overdue_items']}, 销号后反弹 {row['rebounded_items']}")
