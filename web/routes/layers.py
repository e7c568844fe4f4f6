"""Layers as GeoJSON (WGS84) and .xlsx, the map's bounding-box feed, and the search box."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from sanigrid.layers import cases
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
from sanigrid.layers.export import OVERDUE_HEADERS, zh_headers
from sanigrid.layers.filters import eq
from sanigrid.layers.workbook import write_xlsx
from sanigrid.web._errors import Invalid, NotFound
from sanigrid.web.access import CASE_LAYERS, case_scope, check_case_read, own_grid_only
from sanigrid.web.auth import User
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.features import (
    MAP_WHERE,
    bbox_to_store,
    clusters,
    feature_collection,
    feature_json,
    index_mask,
    map_where,
    parse_bbox,
    point_index,
    store_crs,
    to_display,
    where_clause,
)
from sanigrid.web.search import case_hit, find, search_index

router = APIRouter(tags=["layers 图层"])
GEOJSON = "application/geo+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: ``responses=`` of a route that answers with a workbook, and of one that prints a map
XLSX_RESPONSE: dict[int | str, dict] = {200: {"content": {XLSX: {}}, "description": "Excel workbook (.xlsx)"}}
PRINT_RESPONSE: dict[int | str, dict] = {200: {"content": {"image/png": {}, "application/pdf": {}},
                                               "description": "printable map: PNG or PDF, as the path ends"}}
Coords = Literal["wgs84", "gcj02", "bd09"]
BBoxQ = Annotated[str | None, Query(description="西,南,东,北 (lon/lat degrees, in `coords`), "
                                                "e.g. 117.20,28.28,117.24,28.31")]


class LayerSummary(BaseModel):
    kind: str
    title: str
    title_en: str
    role: str
    geometry: list[str]
    count: int
    big: bool
    updated_at: str | None
    synthetic: bool


def present_spec(project, kind: str) -> LayerSpec:
    s = spec(kind)
    if not project.store.has(kind):
        hint = "运行 `sanigrid analyse` 生成分析图层" if s.role == "analysis" else "用 `sanigrid import` 导入"
        raise NotFound(f"图层「{s.zh}」({kind}) 尚未生成或导入; {hint} (layer not in the store yet)")
    return s


@router.get("/api/layers", response_model=list[LayerSummary], summary="图层列表 (layers in the store)")
def list_layers(project: ProjectDep, user: CurrentUser) -> list[LayerSummary]:
    return [LayerSummary(kind=i.kind, title=CATALOGUE[i.kind].zh, title_en=CATALOGUE[i.kind].en,
                         role=CATALOGUE[i.kind].role, geometry=list(CATALOGUE[i.kind].geometry), count=i.count,
                         big=CATALOGUE[i.kind].big, updated_at=i.updated_at, synthetic=i.synthetic)
            for i in project.store.info()]


def _filtered(project, kind: str, *, user: User, bbox: str | None, coords: str, grid: str | None,
              category: str | None, status: str | None, date_from: datetime | None, date_to: datetime | None,
              open_only: bool):
    s = present_spec(project, kind)
    grid = case_scope(user, kind, grid)
    box = parse_bbox(bbox)
    where = where_clause(s, project.settings, grid=grid, category=category, status=status, date_from=date_from,
                         date_to=date_to, open_only=open_only)
    store_box = bbox_to_store(box, store_crs(project.store), coords) if box else None
    frame = project.store.read(kind, bbox=store_box, where=where)
    if box is not None and len(frame):  # the R-tree box is a superset: keep what intersects the asked box
        import shapely

        disp = to_display(frame[[frame.geometry.name]], coords)
        frame = frame[disp.intersects(shapely.box(*box)).to_numpy()]
    if s.key and s.key in frame.columns:
        frame = frame.sort_values(s.key, kind="stable")
    return s, _with_overdue(project, frame, open_only=open_only)


def _with_overdue(project, frame, *, open_only: bool = False, closed_only: bool = False):
    """A problems frame with ``overdue`` and ``days_overdue`` at the case rules' one instant (only the
    cases open then, with ``open_only``; only those closed by then, with ``closed_only``)."""
    if "status" not in frame.columns:
        return frame
    as_of = cases.store_as_of(project.store, settings=project.settings)
    if open_only or closed_only:
        frame = frame[cases.is_open(frame, as_of=as_of).to_numpy() == open_only]
    return cases.with_overdue(frame, as_of=as_of) if "deadline" in frame.columns else frame


@router.get("/api/layers/{kind}", summary="图层 GeoJSON (WGS84), 可筛选与分页",
            responses={200: {"content": {GEOJSON: {}}}})
def layer_geojson(
    kind: str, project: ProjectDep, user: CurrentUser, bbox: BBoxQ = None,
    grid: Annotated[str | None, Query(description="网格编码 grid code")] = None,
    category: Annotated[str | None, Query(description="问题类别 / 类别")] = None,
    status: Annotated[str | None, Query(description="状态: " + " ".join(cases.STATUSES))] = None,
    date_from: Annotated[datetime | None, Query(description="上报时间起 (reported at ≥)")] = None,
    date_to: Annotated[datetime | None, Query(description="上报时间止 (reported at ≤)")] = None,
    open: Annotated[bool, Query(description="只要未结案的 (open only)")] = False,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
    coords: Coords = "wgs84",
) -> Response:
    s, frame = _filtered(project, kind, user=user, bbox=bbox, coords=coords, grid=grid, category=category,
                         status=status,
                         date_from=date_from, date_to=date_to, open_only=open)
    total = len(frame)
    page = frame.iloc[offset:offset + limit]
    extra = [c for c in ("overdue", "days_overdue") if c in page.columns]
    members = {"numberMatched": total, "numberReturned": len(page), "offset": offset, "limit": limit,
               "next_offset": offset + limit if offset + limit < total else None}
    text = feature_collection(page, s, coords=coords, fields=s.field_names, extra=extra, members=members)
    return Response(text, media_type=GEOJSON)


@router.get("/api/layers/{kind}/xlsx", summary="图层导出 Excel (.xlsx, 中文表头)", response_class=Response,
            responses=XLSX_RESPONSE)
def layer_xlsx(
    kind: str, project: ProjectDep, user: CurrentUser, bbox: BBoxQ = None, grid: str | None = None,
    category: str | None = None, status: str | None = None, date_from: datetime | None = None,
    date_to: datetime | None = None, open: bool = False,
) -> Response:
    s, frame = _filtered(project, kind, user=user, bbox=bbox, coords="wgs84", grid=grid, category=category,
                         status=status,
                         date_from=date_from, date_to=date_to, open_only=open)
    return xlsx_response({s.zh: frame}, f"{kind}.xlsx", headers=zh_headers(kind, OVERDUE_HEADERS))


@router.get("/api/layers/{kind}/features/{key}", summary="一个要素 (one feature by its key, e.g. a problem id)",
            responses={200: {"content": {GEOJSON: {}}}})
def layer_feature(kind: str, key: str, project: ProjectDep, user: CurrentUser, coords: Coords = "wgs84") -> Response:
    s = present_spec(project, kind)
    if not s.key:
        raise NotFound(f"图层「{s.zh}」没有编号字段, 不能按编号取要素 (layer {kind} has no key field)")
    value: int | str = key
    if s.field(s.key).dtype == "int":
        if not key.lstrip("-").isdigit():
            raise NotFound(f"「{s.zh}」编号应为整数: {key}")
        value = int(key)
    rows = project.store.read_rows(kind, where=eq(s.key, value))  # one row: no frames (~1 ms at 10^5)
    if not rows:
        raise NotFound(f"图层「{s.zh}」没有编号为 {key} 的要素 (no feature {key})")
    row = rows[0]
    if kind in CASE_LAYERS:
        check_case_read(user, row.get("grid_code"))
    extra: list[str] = []
    if "status" in row and "deadline" in row:  # as _with_overdue does for a frame
        as_of = cases.store_as_of(project.store, settings=project.settings)
        [(row["overdue"], row["days_overdue"])] = cases.overdue_rows([row], as_of=as_of)
        extra = ["overdue", "days_overdue"]
    text = feature_json(row, s, crs=store_crs(project.store), coords=coords, fields=s.field_names, extra=extra)
    return Response(text, media_type=GEOJSON)


def xlsx_response(sheets: dict[str, pd.DataFrame], filename: str, *, headers: dict[str, str]) -> Response:
    buf = io.BytesIO()
    write_xlsx(sheets, buf, headers=headers)
    return Response(buf.getvalue(), media_type=XLSX,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(filename)}"})


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


@router.get("/api/map/{kind}", summary="地图数据: 按视野与缩放级别 (clusters when many points are in view)",
            responses={200: {"content": {GEOJSON: {}}}})
def map_feed(kind: str, project: ProjectDep, user: CurrentUser, bbox: BBoxQ = None,
             zoom: Annotated[float, Query(ge=0, le=24)] = 15, grid: str | None = None,
             open: bool = False, coords: Coords = "wgs84",
             closed: Annotated[bool, Query(description="只要已结案的 (closed only)")] = False,
             facility: Annotated[str | None, Query(description="设施类型 (one facility kind of a coverage layer)")]
             = None,
             ) -> Response:
    s = present_spec(project, kind)
    if open and closed:
        raise Invalid("open 与 closed 只能选一个 (ask for open or closed cases, not both)")
    if facility is not None and "facility_kind" not in s.field_names:
        raise Invalid(f"图层「{s.zh}」没有设施类型字段 (layer {kind} has no facility kind)")
    grid = case_scope(user, kind, grid)
    box = parse_bbox(bbox)
    web = project.settings.web
    columns = None
    if s.big and s.key:
        wanted = {s.key, (s.style.by or {}).get("field"), s.label_field, "status", "deadline", "closed_at",
                  "reported_at", "grid_code"}
        columns = [f for f in s.field_names if f in wanted]
    if s.geometry == ("Point",) and facility is None and kind not in MAP_WHERE:
        idx = point_index(project.store, s, coords, settings=project.settings)
        mask = index_mask(idx, box, grid=grid, open_only=open, closed_only=closed)
        if int(mask.sum()) > web.map_max_points and zoom < 19:
            return Response(clusters(idx, mask, zoom=zoom, cell_px=web.cluster_cell_px, layer=kind),
                            media_type=GEOJSON)
    where = where_clause(s, project.settings, grid=grid, open_only=open or closed) & map_where(kind)
    if facility is not None:
        where &= eq("facility_kind", facility)
    store_box = bbox_to_store(box, store_crs(project.store), coords) if box else None
    frame = project.store.read(kind, bbox=store_box, where=where, columns=columns)
    frame = _with_overdue(project, frame, open_only=open, closed_only=closed)
    extra = [c for c in ("overdue", "days_overdue") if c in frame.columns]
    fields = None
    if s.big and s.key:  # only what drawing needs; the popup is fetched by key when clicked
        fields = [f for f in dict.fromkeys((s.key, (s.style.by or {}).get("field"), s.label_field)) if f]
        extra = [c for c in ("overdue",) if c in frame.columns]
    return Response(feature_collection(frame, s, coords=coords, fields=fields, extra=extra), media_type=GEOJSON)


class SearchHit(BaseModel):
    layer: str
    layer_title: str
    label: str
    bounds: list[float]
    href: str | None = None


@router.get("/api/search", response_model=list[SearchHit],
            summary="搜索网格编码、网格长、地名或问题编号 (grid code, grid head, place name or case number)")
def search(q: Annotated[str, Query(min_length=1, max_length=60)], project: ProjectDep, user: CurrentUser,
           coords: Coords = "wgs84", limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[SearchHit]:
    """Grid codes, names and grid heads, place names and case numbers; see :mod:`sanigrid.web.search`."""
    lang = project.settings.project.language
    idx = search_index(project.store, coords)
    hide_cases = own_grid_only(user) is not None  # the search index holds no grid per hit: no case hits then
    found = find(idx, q, limit)
    out = [SearchHit(layer=idx.layer[i], layer_title=CATALOGUE[idx.layer[i]].title(lang), label=idx.label[i],
                     bounds=[float(v) for v in idx.bounds[i]], href=idx.href[i])
           for i in found if not (hide_cases and idx.layer[i] in CASE_LAYERS)]
    grid_alone = len(found) == 1 and idx.layer[found[0]] == "grids" and idx.key[found[0]] == q.strip()
    case = None if hide_cases or grid_alone else case_hit(project.store, idx, q, coords)
    if case is not None:  # the case of that number as the store has it now, first (the index may lag a report)
        out = [SearchHit(layer_title=CATALOGUE["problems"].title(lang), **case)] + [
            h for h in out if not (h.layer == "problems" and h.label.split()[0] == case["label"].split()[0])]
    return out[:limit]
