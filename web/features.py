"""Layers as GeoJSON for the API and the map: filters, display coordinates, server-side clusters.

Every frame leaves the server in WGS84 lon/lat (``coords="wgs84"``, the API default) or, for a
map drawn on a GCJ-02/BD-09 basemap, shifted into that system so that it lines up. Properties are
the catalogue fields (popup fields, the style's ``by`` field, the label and key fields), with
datetimes as ``YYYY-MM-DD HH:MM`` text.

Large point layers (``LayerSpec.big``) are never sent whole: :func:`clusters` bins the points in
view into screen-sized cells from an in-memory index of their coordinates (rebuilt when the store
file changes), and only when few enough are in view are the points themselves read from the store
by bounding box (the GeoPackage R-tree).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from sanigrid.layers import cases
from sanigrid.layers.catalogue import LayerSpec
from sanigrid.layers.crs import crs_wkt, shift_geometries, to_wgs84, transformer, wgs84_wkt
from sanigrid.layers.filters import Where, between, eq, ne
from sanigrid.layers.settings import Settings
from sanigrid.layers.store import Store
from sanigrid.web._errors import Invalid

BBox = tuple[float, float, float, float]
_DECIMALS = 6  # 1e-6 degree ≈ 0.1 m


# ---------------------------------------------------------------- coordinates
def to_display(frame: gpd.GeoDataFrame, coords: str = "wgs84") -> gpd.GeoDataFrame:
    """A copy in WGS84, shifted into GCJ-02/BD-09 when ``coords`` says so."""
    geoms = display_geometries(np.asarray(frame.geometry.array, dtype=object), frame.crs, coords)
    return frame.set_geometry(gpd.GeoSeries(geoms, crs=4326, index=frame.index))


def display_geometries(geoms: Sequence[Any] | np.ndarray, crs: CRS | None, coords: str = "wgs84") -> np.ndarray:
    """Geometries in ``crs`` as :func:`to_display` gives them (WGS84, shifted for ``coords``), without a
    frame: for the few of one case read by its number."""
    arr = np.asarray(geoms, dtype=object)
    if crs is not None and len(arr) and not _is_wgs84(crs):
        t = transformer(crs_wkt(crs), wgs84_wkt())

        def move(xyz: np.ndarray) -> np.ndarray:
            out = xyz.copy()
            out[:, 0], out[:, 1] = t.transform(xyz[:, 0], xyz[:, 1])
            return out

        arr = shapely.transform(arr, move, include_z=bool(shapely.has_z(arr).any()))
    if coords != "wgs84" and len(arr):
        arr = shift_geometries(arr, coords)
    return arr


def bbox_to_store(bbox: BBox, store_crs: CRS, coords: str = "wgs84") -> BBox:
    """A lon/lat box (in ``coords``) as a box in the store CRS (padded a little for the GCJ-02 shift)."""
    w, s, e, n = bbox
    if coords != "wgs84":
        xs, ys = to_wgs84(np.array([w, e, w, e]), np.array([s, s, n, n]), coords)
        pad = 0.002
        w, e, s, n = xs.min() - pad, xs.max() + pad, ys.min() - pad, ys.max() + pad
    # the box's edges, 21 points each (as transform_bounds densifies them; a pipeline transformer has no
    # CRSs for transform_bounds to look at)
    k = np.linspace(0.0, 1.0, 21)
    lon = np.r_[w + (e - w) * k, np.full(21, e), e - (e - w) * k, np.full(21, w)]
    lat = np.r_[np.full(21, s), s + (n - s) * k, np.full(21, n), n - (n - s) * k]
    x, y = transformer(wgs84_wkt(), crs_wkt(store_crs)).transform(lon, lat)
    return (float(x.min()), float(y.min()), float(x.max()), float(y.max()))


_CRS: dict[str, CRS] = {}


def store_crs(store: Store) -> CRS:
    """The store's CRS (fixed once set, so remembered per store file)."""
    key = store.location
    crs = _CRS.get(key)
    if crs is None:
        crs = store.crs
        if crs is None:
            raise Invalid("the store has no CRS yet: import a layer first")
        _CRS[key] = crs
    return crs


def _is_wgs84(crs: CRS) -> bool:
    return _wkt_is_wgs84(crs_wkt(crs))


@lru_cache(maxsize=64)
def _wkt_is_wgs84(wkt: str) -> bool:
    return wkt == wgs84_wkt() or CRS.from_wkt(wkt).equals(CRS.from_epsg(4326))


def parse_bbox(text: str | None) -> BBox | None:
    """``"w,s,e,n"`` in degrees → tuple, with a 422 that says what is wrong."""
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise Invalid(f"bbox '{text}' 应为 西,南,东,北 四个经纬度数值 (bbox must be w,s,e,n in degrees)") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise Invalid(f"bbox '{text}' 应为 西,南,东,北 四个数值 (bbox must be 4 numbers w,s,e,n)")
    w, s, e, n = vals
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90) or w > e or s > n:
        raise Invalid(f"bbox '{text}' 超出经纬度范围或顺序不对 (need -180≤w≤e≤180, -90≤s≤n≤90)")
    return (w, s, e, n)


# ---------------------------------------------------------------- filters
#: what the map never draws of a layer (field, values): Gi* cells that are not significant (they would
#: only haze the town)
MAP_LEAVE_OUT: dict[str, tuple[str, tuple[str, ...]]] = {"gi_cells": ("label", ("不显著",))}
MAP_WHERE = tuple(MAP_LEAVE_OUT)


def map_where(kind: str) -> Where:
    """The filter of what the map draws of ``kind`` (everything, unless :data:`MAP_LEAVE_OUT` says otherwise)."""
    where = Where()
    field, values = MAP_LEAVE_OUT.get(kind, ("", ()))
    for v in values:
        where &= ne(field, v)
    return where


def where_clause(spec: LayerSpec, settings: Settings, *, grid: str | None = None, category: str | None = None,
                 status: str | None = None, date_from: datetime | None = None,
                 date_to: datetime | None = None, open_only: bool = False) -> Where:
    """A typed filter on the layer's attributes (the store sends the values as query parameters).

    ``open_only`` is checked here (the layer needs a status) but applied by the caller after reading,
    with the case rules' :func:`layers.cases.is_open` at their one instant.
    """
    names = set(spec.field_names)
    where = Where()
    if grid:
        col = "grid_code" if "grid_code" in names else "code" if spec.kind in ("grids", "scorecard") else None
        if col is None:
            raise Invalid(f"图层「{spec.zh}」没有网格字段, 不能按网格筛选 (layer {spec.kind} has no grid field)")
        where &= eq(col, grid)
    if category:
        if "category" not in names:
            raise Invalid(f"图层「{spec.zh}」没有类别字段 (layer {spec.kind} has no category)")
        f = spec.field("category")
        allowed = list(f.allowed) if f.allowed else (settings.allowed(f.allowed_from) if f.allowed_from else [])
        if allowed and category not in allowed:
            raise Invalid(f"未知类别「{category}」; 可选: {'、'.join(allowed)} (unknown category)")
        where &= eq("category", category)
    if status or open_only:
        if "status" not in names:
            raise Invalid(f"图层「{spec.zh}」没有状态字段 (layer {spec.kind} has no status)")
        if status:
            if status not in cases.STATUSES:
                raise Invalid(f"未知状态「{status}」; 可选: {'、'.join(cases.STATUSES)}")
            where &= eq("status", status)
    date_field = next((f.name for f in spec.fields if f.dtype in ("datetime", "date") and f.required), None)
    if date_from or date_to:
        if date_field is None:
            raise Invalid(f"图层「{spec.zh}」没有日期字段, 不能按日期筛选 (layer {spec.kind} has no date)")
        where &= between(date_field, lo=pd.Timestamp(date_from) if date_from else None,
                         hi=pd.Timestamp(date_to) if date_to else None)
    return where


# ---------------------------------------------------------------- properties and GeoJSON
def property_fields(spec: LayerSpec) -> list[str]:
    """Fields sent with each feature: popup fields, the key, the label, the style's ``by`` field."""
    out = [f.name for f in spec.fields if f.popup]
    for extra in (spec.key, spec.label_field, (spec.style.by or {}).get("field")):
        if extra and extra not in out and extra in spec.field_names:
            out.append(extra)
    return out


def _jsonable(col: pd.Series, dtype: str) -> list[Any]:
    if dtype in ("datetime", "date"):
        t = pd.to_datetime(col, errors="coerce")
        fmt = "%Y-%m-%d %H:%M" if dtype == "datetime" else "%Y-%m-%d"
        return [None if pd.isna(v) else v.strftime(fmt) for v in t]
    if dtype == "float":
        v = pd.to_numeric(col, errors="coerce").round(2)
        return [None if pd.isna(x) else float(x) for x in v]
    if dtype == "int":
        v = pd.to_numeric(col, errors="coerce")
        return [None if pd.isna(x) else int(x) for x in v]
    if dtype == "bool":
        return [None if pd.isna(x) else bool(x) for x in col]
    return [None if x is None or (not isinstance(x, str) and pd.isna(x)) else str(x) for x in col]


def records(frame: pd.DataFrame, spec: LayerSpec, fields: Sequence[str] | None = None,
            extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (catalogue types; datetimes as text)."""
    fields = list(fields if fields is not None else property_fields(spec))
    cols: dict[str, list[Any]] = {}
    types = {f.name: f.dtype for f in spec.fields}
    for name in list(fields) + list(extra):
        if name not in frame.columns:
            continue
        kind = types.get(name)
        if kind is None:
            s = frame[name]
            kind = ("bool" if pd.api.types.is_bool_dtype(s) else "float" if pd.api.types.is_float_dtype(s)
                    else "int" if pd.api.types.is_integer_dtype(s) else "str")
        cols[name] = _jsonable(frame[name], kind)
    n = len(frame)
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def row_record(row: dict[str, Any], spec: LayerSpec, fields: Sequence[str] | None = None,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """One row of a store's ``read_rows`` as :func:`records` gives it (catalogue types; datetimes as text)."""
    fields = list(fields if fields is not None else property_fields(spec))
    types = {f.name: f.dtype for f in spec.fields}
    out: dict[str, Any] = {}
    for name in list(fields) + list(extra):
        if name not in row:
            continue
        v = row[name]
        kind = types.get(name) or ("bool" if isinstance(v, bool) else "float" if isinstance(v, float)
                                   else "int" if isinstance(v, int) else "str")
        out[name] = _json_value(v, kind)
    return out


def _json_value(v: Any, dtype: str) -> Any:
    """One value as :func:`_jsonable` gives it."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    if dtype in ("datetime", "date"):
        t = pd.to_datetime(v, errors="coerce")
        return None if pd.isna(t) else t.strftime("%Y-%m-%d %H:%M" if dtype == "datetime" else "%Y-%m-%d")
    if dtype in ("float", "int"):
        x = pd.to_numeric(v, errors="coerce")
        if pd.isna(x):
            return None
        return float(np.round(float(x), 2)) if dtype == "float" else int(x)
    if dtype == "bool":
        return bool(v)
    return str(v)


def feature_json(row: dict[str, Any], spec: LayerSpec, *, crs: CRS | None, coords: str = "wgs84",
                 fields: Sequence[str] | None = None, extra: Sequence[str] = ()) -> str:
    """One GeoJSON Feature (text) of a row from a store's ``read_rows`` (geometry in ``crs``), the same
    text as that row's feature in :func:`feature_collection`."""
    geom = row.get("geometry")
    g = shapely.to_geojson(_round(display_geometries([geom], crs, coords)))[0] if geom is not None else None
    return _feature(g, row_record(row, spec, fields, extra))


def _feature(geojson: str | None, props: dict[str, Any]) -> str:
    return ('{"type":"Feature","geometry":' + (geojson if geojson is not None else "null") + ',"properties":'
            + json.dumps(props, ensure_ascii=False, separators=(",", ":")) + "}")


def _round(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.round(c, _DECIMALS))


def feature_collection(frame: gpd.GeoDataFrame, spec: LayerSpec, *, coords: str = "wgs84",
                       fields: Sequence[str] | None = None, extra: Sequence[str] = (),
                       members: dict[str, Any] | None = None) -> str:
    """A GeoJSON FeatureCollection (text) of ``frame`` in WGS84 (or ``coords`` for display)."""
    disp = to_display(frame, coords)
    geoms = shapely.to_geojson(_round(disp.geometry.values))
    props = records(disp, spec, fields, extra)
    feats = ",".join(_feature(g, p) for g, p in zip(geoms, props, strict=True))
    head = {"type": "FeatureCollection", "layer": spec.kind, "coords": coords, **(members or {})}
    return json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"features":[' + feats + "]}"


@dataclass(frozen=True)
class PointIndex:
    """Display coordinates and the few attributes clusters summarise, for one point layer, with
    ``open`` and ``overdue`` at ``as_of`` (the case rules' one instant)."""

    lon: np.ndarray
    lat: np.ndarray
    open: np.ndarray
    overdue: np.ndarray
    grid: np.ndarray
    as_of: datetime | None


@dataclass
class _Points:
    lon: np.ndarray
    lat: np.ndarray
    grid: np.ndarray
    cases: pd.DataFrame | None  # status, deadline, reported_at, closed_at (a problems layer)
    flags: dict[datetime, tuple[np.ndarray, np.ndarray]]


_INDEX: dict[tuple[Any, ...], _Points] = {}
_INDEX_LOCK = threading.Lock()


def _points(store: Store, spec: LayerSpec, coords: str) -> _Points:
    """The cached coordinates of a point layer (rebuilt after any write to the store)."""
    key = (store.location, spec.kind, coords, store.version())
    with _INDEX_LOCK:
        hit = _INDEX.get(key)
    if hit is not None:
        return hit
    names = set(spec.field_names)
    cols = [c for c in ("status", "deadline", "closed_at", "reported_at", "grid_code") if c in names]
    frame = store.read(spec.kind, columns=cols)
    disp = to_display(frame, coords)
    pts = disp.geometry.values
    lon, lat = shapely.get_x(pts), shapely.get_y(pts)
    n = len(frame)
    grid = frame["grid_code"].astype("object").to_numpy() if "grid_code" in frame else np.full(n, None, object)
    rules = pd.DataFrame(frame[[c for c in cols if c != "grid_code"]]) if "status" in frame else None
    base = _Points(np.asarray(lon), np.asarray(lat), grid, rules, {})
    with _INDEX_LOCK:
        for k in [k for k in _INDEX if k[:3] == key[:3]]:
            del _INDEX[k]
        _INDEX[key] = base
    return base


def point_index(store: Store, spec: LayerSpec, coords: str, *, settings: Settings,
                as_of: datetime | None = None) -> PointIndex:
    """The index of a point layer, open and overdue counted at ``as_of`` (default: the case rules'
    :func:`layers.cases.store_as_of`)."""
    base = _points(store, spec, coords)
    n = len(base.lon)
    if base.cases is None:
        return PointIndex(base.lon, base.lat, np.ones(n, bool), np.zeros(n, bool), base.grid, None)
    t = as_of or cases.store_as_of(store, settings=settings)
    flags = base.flags.get(t)
    if flags is None:
        od = cases.overdue(base.cases, as_of=t)
        flags = (cases.is_open(base.cases, as_of=t).to_numpy(dtype=bool), od["overdue"].to_numpy(dtype=bool))
        base.flags.clear()
        base.flags[t] = flags
    return PointIndex(base.lon, base.lat, flags[0], flags[1], base.grid, t)


def index_mask(idx: PointIndex, bbox: BBox | None, *, grid: str | None = None, open_only: bool = False,
               closed_only: bool = False) -> np.ndarray:
    m = np.ones(len(idx.lon), bool)
    if bbox is not None:
        w, s, e, n = bbox
        m &= (idx.lon >= w) & (idx.lon <= e) & (idx.lat >= s) & (idx.lat <= n)
    if grid:
        m &= idx.grid == grid
    if open_only:
        m &= idx.open
    if closed_only:
        m &= ~idx.open
    return m


def clusters(idx: PointIndex, mask: np.ndarray, *, zoom: float, cell_px: int, layer: str) -> str:
    """Points under ``mask`` binned into cells of ``cell_px`` screen pixels at ``zoom``.

    Each cluster is a GeoJSON point at the mean position of its members, with ``_count``,
    ``_open`` and ``_overdue`` (numbers of points) and ``_bbox`` (the lon/lat bounds of its cell).
    Cells are anchored on a global lattice, so clusters do not jump when the map is panned.
    """
    cell = cell_px * 360.0 / (256.0 * 2.0 ** max(0.0, zoom))
    lon, lat = idx.lon[mask], idx.lat[mask]
    if len(lon) == 0:
        return json.dumps({"type": "FeatureCollection", "layer": layer, "clustered": True, "features": []})
    ix = np.floor(lon / cell).astype(np.int64)
    iy = np.floor(lat / cell).astype(np.int64)
    x0, y0 = ix.min(), iy.min()
    ny = int(iy.max() - y0) + 1
    local = (ix - x0) * ny + (iy - y0)  # cells of the lattice in view: a counting pass, no sort
    size = int(local.max()) + 1
    if size > 4_000_000:  # a huge lattice (zoomed far in without a bbox): number the occupied cells instead
        occupied, local = np.unique(local, return_inverse=True)
        size = len(occupied)
    else:
        occupied = None
    count_all = np.bincount(local, minlength=size)
    cells = np.flatnonzero(count_all)
    count = count_all[cells]
    mlon = np.bincount(local, weights=lon, minlength=size)[cells] / count
    mlat = np.bincount(local, weights=lat, minlength=size)[cells] / count
    nopen = np.bincount(local, weights=idx.open[mask], minlength=size)[cells].astype(int)
    nover = np.bincount(local, weights=idx.overdue[mask], minlength=size)[cells].astype(int)
    # a cluster's box is its lattice cell (clicking it zooms there)
    lattice = cells if occupied is None else occupied[cells]
    wmin = (lattice // ny + x0) * cell
    smin = (lattice % ny + y0) * cell
    wmax, smax = wmin + cell, smin + cell
    k = len(cells)
    feats = [
        f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{mlon[i]:.6f},{mlat[i]:.6f}]}},'
        f'"properties":{{"_count":{count[i]},"_open":{nopen[i]},"_overdue":{nover[i]},'
        f'"_bbox":[{wmin[i]:.6f},{smin[i]:.6f},{wmax[i]:.6f},{smax[i]:.6f}]}}}}'
        for i in range(k)
    ]
    head = json.dumps({"type": "FeatureCollection", "layer": layer, "clustered": True, "total": int(count.sum())})
    return head[:-1] + ',"features":[' + ",".join(feats) + "]}"
