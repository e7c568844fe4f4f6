"""Tables out to Excel: Chinese headers from the catalogue, one sheet per part, frozen header row.

Planners live in Excel; every table sanigrid writes goes through the one workbook writer
(:func:`sanigrid.layers.workbook.write_xlsx`) so that all exports look alike (bold header, widths
fitted, coordinates in WGS84 columns 经度/纬度) and are safe (text as text, no control characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.layers.crs import crs_wkt, transformer, wgs84_wkt
from sanigrid.layers.workbook import safe_csv_frame, sheet_name, write_xlsx

__all__ = ["export_layer", "params_table", "sheet_name", "table_with_lonlat", "write_xlsx", "zh_headers"]



#: the one word for a case past its deadline (逾期, "overdue"), and the headers of the computed overdue columns
OVERDUE_ZH = "逾期"
OVERDUE_HEADERS: dict[str, str] = {"overdue": f"是否{OVERDUE_ZH}", "days_overdue": f"{OVERDUE_ZH}天数"}


def zh_headers(kind: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Column name → Chinese header: the catalogue's names for ``kind`` plus ``extra``."""
    out: dict[str, str] = {}
    if kind is not None and kind in CATALOGUE:
        out.update({f.name: f.zh for f in CATALOGUE[kind].fields})
    out.update(extra or {})
    return out


#: Chinese names of the parameters and totals that analyses record (summary sheets, layer metadata)
PARAM_ZH: dict[str, str] = {
    "facility_kind": "设施类型", "radius_m": "服务半径(米)", "source": "依据", "method": "距离度量",
    "buffer_m": "服务范围缓冲(米)", "max_snap_m": "最大接入距离(米)", "date": "计算时间", "facilities": "设施数",
    "attached": "接入路网设施数", "street_km": "道路总长(公里)", "covered_km": "已覆盖长度(公里)",
    "uncovered_km": "未覆盖长度(公里)", "coverage_pct": "覆盖率(%)", "components": "路网连通分量数",
    "households": "户数", "households_uncovered": "未覆盖户数", "new": "新增设施数", "solver": "求解方法",
    "candidate_spacing_m": "候选点间距(米)", "min_distance_to_existing_m": "距现有设施最小距离(米)",
    "demand_unit": "需求单位", "demand_total": "需求总量", "demand_served_now": "现已覆盖需求",
    "demand_open": "未覆盖需求", "newly_served": "新增覆盖需求", "newly_served_pct": "新增覆盖占未覆盖(%)",
    "bound": "最优值上界", "gap_pct": "距最优至多(%)", "status": "求解状态", "candidates": "候选点数",
    "candidates_usable": "可用候选点数", "unreachable": "不可达需求", "seconds": "用时(秒)",
    "cell_size_m": "格网边长(米)", "band_m": "距离带(米)", "cells": "格网数",
    "neighbours_incl_self": "邻域格网数(含自身)",
    "weeks": "周数", "trend_cell_m": "趋势分析格网(米)", "fdr": "错误发现率校正", "reports": "问题数",
    "value": "统计量", "piles": "重复坐标堆点数", "pile_reports": "堆点问题数", "piles_excluded": "堆点已排除",
    "eps_m": "聚类距离(米)", "min_samples": "最少问题数", "clusters": "聚集区数", "as_of": "统计截至",
    "since": "起始日期", "categories": "问题类别",
}


def params_table(params: Mapping[str, object]) -> pd.DataFrame:
    """A two-column sheet (项目, 数值) of an analysis's parameters and totals, with Chinese item names
    (the English key stays in brackets so a number can be traced to the settings)."""
    items = [f"{PARAM_ZH[k]} ({k})" if k in PARAM_ZH else k for k in params]
    return pd.DataFrame({"项目": items, "数值": [str(v) for v in params.values()]})


def table_with_lonlat(frame: gpd.GeoDataFrame | pd.DataFrame) -> pd.DataFrame:
    """Drop the geometry; points (or centroids) become WGS84 columns 经度 and 纬度."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return pd.DataFrame(frame)
    plain = pd.DataFrame(frame)
    lonlat = {}
    if len(frame) and frame.crs is not None:
        lonlat = dict(zip(("经度", "纬度"), _lonlat(frame.geometry.array, frame.crs), strict=True))
    if not plain.columns.is_unique:
        out = plain.drop(columns=frame.geometry.name)  # a plain frame drops ~10× faster
        for c, v in lonlat.items():
            out[c] = v
        return out
    # one new frame from the columns (a drop and two inserts took twice as long: a workbook of 52 grid
    # sheets made 52 of these)
    data = {c: plain[c] for c in plain.columns if c != frame.geometry.name}
    return pd.DataFrame({**data, **lonlat}, index=plain.index)


def _lonlat(geoms: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude and latitude (6 decimals) of each geometry's representative point (NaN for a
    missing or empty one), through the kept PROJ pipeline (``to_crs`` made a transformer per table: 56
    in one ``analyse``)."""
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    x, y = np.full(len(pts), np.nan), np.full(len(pts), np.nan)
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    if ok.any():
        xy = shapely.get_coordinates(pts[ok])
        x[ok], y[ok] = transformer(crs_wkt(crs), wgs84_wkt()).transform(xy[:, 0], xy[:, 1])
    return x.round(6), y.round(6)


#: file endings :func:`export_layer` writes, and how
EXPORT_FORMATS = {".xlsx": "Excel (中文表头, 经纬度 WGS84)", ".csv": "CSV (UTF-8 with BOM, 中文表头, 经纬度 WGS84)",
                  ".geojson": "GeoJSON (WGS84)", ".gpkg": "GeoPackage (project CRS)",
                  ".shp": "Shapefile (project CRS, .prj, GBK attributes with a .cpg)"}


def export_layer(frame: gpd.GeoDataFrame, kind: str, path: str | Path, *, encoding: str = "GBK") -> Path:
    """Write one layer for people and programs outside sanigrid, by the file's ending.

    Tables (.xlsx, .csv) get Chinese headers and WGS84 经度/纬度 columns; GeoJSON is WGS84 (RFC 7946);
    GeoPackage and Shapefile keep the project CRS. Shapefiles carry ``encoding`` (GBK by default, as
    ArcGIS and most Chinese GIS desktops expect) and name it in a .cpg file; a DBF field name holds
    at most 10 bytes, so fields get their Chinese name where it fits (名称, 类别, 厕位数 …), else a
    unique short form of the English one. sanigrid's importer reads both back.
    """
    import pyogrio

    from sanigrid.layers._errors import SanigridError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise SanigridError(f"{path.name}: cannot write '{suffix or 'no ending'}'; use one of "
                            + ", ".join(f"{k} ({v})" for k, v in EXPORT_FORMATS.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = zh_headers(kind)
    if suffix == ".xlsx":
        spec = CATALOGUE.get(kind)
        write_xlsx({spec.zh if spec else kind: frame}, path, headers=headers)
    elif suffix == ".csv":
        safe_csv_frame(table_with_lonlat(frame).rename(columns=headers)).to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix == ".geojson":
        pyogrio.write_dataframe(frame.to_crs(4326), path, driver="GeoJSON")
    elif suffix == ".gpkg":
        pyogrio.write_dataframe(frame, path, layer=kind, driver="GPKG")
    else:
        out = frame.copy()
        for col in out.columns:  # the DBF format has no datetime with time of day: write ISO text
            if pd.api.types.is_datetime64_any_dtype(out[col]):
                out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S").where(out[col].notna(), None)
        _check_encodable(out, kind, path, encoding, headers)
        out = out.rename(columns=_dbf_names([c for c in out.columns if c != out.geometry.name], headers,
                                            encoding))
        pyogrio.write_dataframe(out, path, driver="ESRI Shapefile", encoding=encoding)
    return path


def _check_encodable(frame: gpd.GeoDataFrame, kind: str, path: Path, encoding: str, headers: Mapping[str, str]) -> None:
    """Refuse, naming the feature and field, a text the shapefile's encoding cannot hold (before writing)."""
    from sanigrid.layers._errors import SanigridError

    for col in frame.columns:
        if col == frame.geometry.name or not (frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col])):
            continue
        text = frame[col].astype("object")

        def bad(v: object) -> bool:
            if not isinstance(v, str):
                return False
            try:
                v.encode(encoding)
            except UnicodeEncodeError:
                return True
            return False

        hits = text.map(bad).to_numpy(dtype=bool)
        if hits.any():
            row = int(hits.argmax())
            value = str(text.iloc[row])
            char = next(c for c in value if bad(c))
            zh = headers.get(col)
            raise SanigridError(
                f"{path.name}: {kind} feature {row + 1} (counted from 1, as in the QGIS attribute table), field "
                f"{col}{f' ({zh})' if zh else ''}: '{value[:40]}' holds '{char}' (U+{ord(char):04X}), which "
                f"{encoding.upper()} cannot hold ({int(hits.sum())} value(s) of this field in all). Fix: export "
                "with --encoding UTF-8 (the .cpg file tells QGIS/ArcGIS), or write GeoPackage (.gpkg) instead")


def _cut(text: str, n_bytes: int, encoding: str) -> str:
    """The longest start of ``text`` that takes at most ``n_bytes`` in ``encoding``."""
    while len(text.encode(encoding, errors="replace")) > n_bytes:
        text = text[:-1]
    return text


def _dbf_names(columns: list[str], headers: Mapping[str, str], encoding: str) -> dict[str, str]:
    """Field names of at most 10 bytes in ``encoding``: the Chinese header if it fits, else the name cut short."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        zh = headers.get(col, "")
        name = zh if zh and len(zh.encode(encoding, errors="replace")) <= 10 else _cut(col, 10, encoding)
        k = 1
        while name.lower() in used:  # a clash: the column name, cut to leave room for a number
            name = _cut(col, 10 - len(str(k)), encoding) + str(k)
            k += 1
        used.add(name.lower())
        out[col] = name
    return out
