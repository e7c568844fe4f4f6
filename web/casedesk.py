"""The case desk: the county-wide case list (``/cases``) and one case's page (``/cases/{id}``).

The list is one query (:class:`CaseQuery`, the page's query parameters, so a view can be bookmarked)
over the cases the account may read (:func:`web.access.case_scope`), with open and overdue counted at
the one instant of the case rules (:func:`layers.cases.store_as_of`). A page of it (:func:`list_page`)
is filtered, counted, sorted and cut inside the store, in SQL (:func:`list_where`: the view as a typed
filter), so a county-year of cases is never read for one page; the Excel export takes every row of the
view (:func:`list_frame`, the same rows in the same order: the tests hold the two equal).

A case page shows every field, a small map, the history as a timeline, the photos (before/after the
case last entered 处置, :func:`layers.cases.handling_started`) and, for an account that may act, the
next legal steps (:func:`layers.cases.next_steps`); the JSON API takes the step and checks again.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import geopandas as gpd
import pandas as pd
import shapely

from sanigrid.layers import cases
from sanigrid.layers.catalogue import CATALOGUE, PROBLEM_SOURCES
from sanigrid.layers.export import OVERDUE_HEADERS
from sanigrid.layers.filters import Order, Where, between, contains, either, eq, lt, negate, one_of
from sanigrid.layers.project import Project
from sanigrid.web import intake
from sanigrid.web._errors import Invalid, NotFound
from sanigrid.web.access import case_scope, check_case_read
from sanigrid.web.auth import User
from sanigrid.web.features import display_geometries, store_crs, to_display
from sanigrid.web.texts import texts

T = TypeVar("T")
#: the columns the list can be sorted by (a ``-`` before the name: descending)
SORTS: tuple[str, ...] = ("problem_id", "reported_at", "deadline", "days_overdue", "status", "category",
                          "grid_code", "unit", "source")
DEFAULT_SORT = "-reported_at"
#: the columns of the list, its map popups and its Excel export, in order
LIST_FIELDS: tuple[str, ...] = ("problem_id", "priority", "category", "description", "status", "grid_code", "unit",
                                "source", "reported_at", "deadline", "days_overdue", "closed_at")


@dataclass(frozen=True)
class CaseQuery:
    """One view of the case list: filters, sort and page (the page's query parameters)."""

    status: tuple[str, ...] = ()  # any of these; "open" stands for every status but 结案
    category: str = ""
    source: str = ""
    grid: str = ""
    unit: str = ""
    date_from: date | None = None  # reported on or after this day
    date_to: date | None = None  # reported on or before this day
    overdue: bool | None = None
    priority: bool | None = None
    q: str = ""  # a case number, or text in the description, category, unit or grid code
    sort: str = DEFAULT_SORT
    page: int = 1

    def check(self) -> None:
        """:class:`Invalid` (422) for a value the list cannot filter or sort by, naming the choices."""
        bad = [s for s in self.status if s not in (*cases.STATUSES, "open")]
        if bad:
            raise Invalid(f"未知状态 {'、'.join(bad)}; 可选: open、{'、'.join(cases.STATUSES)} (unknown status)")
        if self.source and self.source not in PROBLEM_SOURCES:
            raise Invalid(f"未知来源「{self.source}」; 可选: {'、'.join(PROBLEM_SOURCES)} (unknown source)")
        if self.sort.lstrip("-") not in SORTS:
            raise Invalid(f"不能按「{self.sort}」排序; 可选: {', '.join(SORTS)} (前加 - 为倒序) (unknown sort)")
        if self.page < 1:
            raise Invalid("页码从 1 开始 (page starts at 1)")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise Invalid(f"起始日期 {self.date_from} 晚于截止日期 {self.date_to} (from is after to)")

    def params(self, **change: Any) -> list[tuple[str, str]]:
        """The query parameters of this view (with ``change`` applied), empty ones left out."""
        v = replace(self, **change) if change else self
        out: list[tuple[str, str]] = [("status", s) for s in v.status]
        for name in ("category", "source", "grid", "unit", "q"):
            if getattr(v, name):
                out.append((name, getattr(v, name)))
        if v.date_from:
            out.append(("from", v.date_from.isoformat()))
        if v.date_to:
            out.append(("to", v.date_to.isoformat()))
        for name in ("overdue", "priority"):
            if getattr(v, name) is not None:
                out.append((name, "1" if getattr(v, name) else "0"))
        if v.sort != DEFAULT_SORT:
            out.append(("sort", v.sort))
        if v.page != 1:
            out.append(("page", str(v.page)))
        return out

    def url(self, path: str = "/cases", **change: Any) -> str:
        p = self.params(**change)
        return path + ("?" + urlencode(p) if p else "")


def _text(col: pd.Series) -> pd.Series:
    return col.astype("object").where(col.notna(), "").astype(str)


def list_frame(project: Project, user: User, query: CaseQuery) -> gpd.GeoDataFrame:
    """The cases of the view, every one the account may read, filtered and sorted (not paged), with
    ``overdue``, ``days_overdue`` and ``priority``."""
    query.check()
    store = project.store
    spec = CATALOGUE["problems"]
    grid = case_scope(user, "problems", query.grid or None)  # a grid head: their own grid, 403 for another
    if not store.has("problems"):
        return gpd.GeoDataFrame({c: [] for c in (*spec.field_names, "overdue", "days_overdue")},
                                geometry=[], crs=store.crs)
    frame = problems_frame(store)
    if grid:
        frame = frame[(frame["grid_code"] == grid).fillna(False).to_numpy()]
    at = cases.store_as_of(store, settings=project.settings)
    frame = _with_flags(frame, at)
    keep = pd.Series(True, index=frame.index)
    if query.status:
        wanted = set(query.status) - {"open"}
        by_status = frame["status"].isin(wanted)
        if "open" in query.status:
            by_status |= cases.is_open(frame, as_of=at)
        keep &= by_status
    for name, column in (("category", "category"), ("source", "source"), ("unit", "unit")):
        value = getattr(query, name)
        if value:
            keep &= _text(frame[column]) == value
    reported = pd.to_datetime(frame["reported_at"])
    if query.date_from:
        keep &= reported >= pd.Timestamp(query.date_from)
    if query.date_to:
        keep &= reported < pd.Timestamp(query.date_to + timedelta(days=1))
    if query.overdue is not None:
        keep &= frame["overdue"] == query.overdue
    if query.priority is not None:
        keep &= frame[cases.PRIORITY] == query.priority
    q = query.q.strip().lstrip("#＃")
    if q:
        if q.isdigit():
            keep &= frame["problem_id"] == int(q)
        else:
            hay = _text(frame["description"]) + " " + _text(frame["category"]) + " " + _text(frame["unit"]) + " " + \
                _text(frame["grid_code"])
            keep &= hay.str.contains(q, regex=False)
    frame = frame[keep.to_numpy()]
    key, descending = query.sort.lstrip("-"), query.sort.startswith("-")
    order = [key] + (["problem_id"] if key != "problem_id" else [])
    return frame.sort_values(order, ascending=[not descending] + [False] * (len(order) - 1), na_position="last",
                             kind="stable")


@dataclass(frozen=True)
class CasePage:
    """One page of the case list and what the page says about the whole view."""

    query: CaseQuery  # its page clamped to the pages there are
    rows: gpd.GeoDataFrame  # the page's cases, in the view's order, with overdue, days_overdue and priority
    n: int  # cases in the view
    n_late: int  # of which overdue
    pages: int
    units: list[str]  # the units of the view's cases (the unit filter's choices)


def list_where(query: CaseQuery, *, grid: str | None, as_of: datetime, fields: Collection[str]) -> Where:
    """The view's filters as one typed store filter: the same rows :func:`list_frame` keeps (``fields``:
    the problems layer's columns; without a priority column no case is marked)."""
    w = eq("grid_code", grid) if grid else Where()
    if query.status:
        wanted = one_of("status", sorted(set(query.status) - {"open"}))
        w &= either(wanted, cases.open_where(as_of=as_of)) if "open" in query.status else wanted
    for name in ("category", "source", "unit"):
        value = getattr(query, name)
        if value:
            w &= eq(name, value)
    if query.date_from:
        w &= between("reported_at", lo=pd.Timestamp(query.date_from))
    if query.date_to:
        w &= lt("reported_at", pd.Timestamp(query.date_to + timedelta(days=1)))
    if query.overdue is not None:
        late = cases.overdue_where(as_of=as_of)
        w &= late if query.overdue else negate(late)
    if query.priority is not None:
        if cases.PRIORITY in fields:
            marked = eq(cases.PRIORITY, True)
            w &= marked if query.priority else negate(marked)
        elif query.priority:
            w &= one_of("problem_id", [])  # nothing is marked
    q = query.q.strip().lstrip("#＃")
    if q:
        w &= eq("problem_id", int(q)) if q.isdigit() else contains(("description", "category", "unit", "grid_code"), q)
    return w


def list_page(project: Project, user: User, query: CaseQuery, *, per_page: int) -> CasePage:
    """One page of the view, filtered, counted, sorted and cut inside the store (SQL): the layer is not
    read, only the page's rows. The same rows, counts and order as :func:`list_frame` cut to the page."""
    query.check()
    store = project.store
    grid = case_scope(user, "problems", query.grid or None)
    at = cases.store_as_of(store, settings=project.settings)
    if not store.has("problems") or pd.Timestamp(at).value % 1_000_000:
        # no layer, or an instant finer than the stored milliseconds (never from the case rules): the frame
        return _frame_page(list_frame(project, user, query), query, per_page)
    fields = (by_version(store, ("fields", "problems"),
                         lambda: tuple(store.read("problems", where=one_of("problem_id", [])).columns))
              if query.priority is not None else ())  # only the priority filter asks whether the column is there
    where = list_where(query, grid=grid, as_of=at, fields=fields)
    # the view's size and its overdue cases: one scan in the store
    counts = store.count_by("problems", [], where=where, also={"late": cases.overdue_where(as_of=at)})
    n, n_late = (int(counts["n"].sum()), int(counts["late"].sum()))
    pages = page_count(n, per_page)
    query = replace(query, page=min(query.page, pages))
    offset = (query.page - 1) * per_page
    key, descending = query.sort.lstrip("-"), query.sort.startswith("-")
    first: Order = Order(cases.days_overdue_order(as_of=at) if key == "days_overdue" else key, descending)
    order = [first] + ([Order("problem_id", True)] if key != "problem_id" else [])
    rows = store.read_page("problems", order=order, limit=per_page, offset=offset, where=where)
    units = store.distinct("problems", "unit", where=where) if n else []
    return CasePage(query=query, rows=_with_flags(rows, at), n=n, n_late=n_late, pages=pages,
                    units=sorted({str(u) for u in units} | ({query.unit} if query.unit else set())))


def _with_flags(frame: gpd.GeoDataFrame, at: datetime) -> gpd.GeoDataFrame:
    """A copy of ``frame`` with ``overdue``, ``days_overdue`` at ``at`` and ``priority`` as a plain bool."""
    frame = cases.with_overdue(frame, as_of=at)
    frame[cases.PRIORITY] = (frame[cases.PRIORITY].fillna(False).astype(bool) if cases.PRIORITY in frame
                             else False)
    return frame


def _frame_page(frame: gpd.GeoDataFrame, query: CaseQuery, per_page: int) -> CasePage:
    pages = page_count(len(frame), per_page)
    query = replace(query, page=min(query.page, pages))
    shown = frame.iloc[(query.page - 1) * per_page: query.page * per_page]
    units = sorted(set(frame["unit"].dropna().astype(str).unique()) | ({query.unit} if query.unit else set()))
    return CasePage(query=query, rows=shown, n=len(frame), n_late=int(frame["overdue"].sum()), pages=pages,
                    units=units)


def page_count(n: int, per_page: int) -> int:
    return max(1, math.ceil(n / per_page))


def export_sheets(frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The view as one sheet (every row, not one page) with Chinese headers."""
    spec = CATALOGUE["problems"]
    cols = [c for c in LIST_FIELDS if c in frame.columns]
    out = pd.DataFrame(frame[cols]).copy()
    out.insert(out.columns.get_loc("days_overdue"), "overdue", frame["overdue"].to_numpy())
    headers = {f.name: f.zh for f in spec.fields} | dict(OVERDUE_HEADERS)
    return {"问题清单": out.reset_index(drop=True)}, headers


def when(v: Any) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


def show(v: Any) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def list_rows(frame: gpd.GeoDataFrame, coords: str) -> list[dict[str, Any]]:
    """The rows of one page for the template and its map (display coordinates, rounded)."""
    if frame.empty:
        return []
    disp = to_display(frame, coords)
    out = []
    for (_, r), g in zip(frame.iterrows(), disp.geometry, strict=True):
        pt = g if g is not None and not g.is_empty else None
        if pt is not None and pt.geom_type != "Point":
            pt = pt.representative_point()
        out.append({"id": int(r["problem_id"]), "priority": bool(r[cases.PRIORITY]), "category": show(r["category"]),
                    "description": show(r["description"]), "status": show(r["status"]),
                    "grid": show(r["grid_code"]), "unit": show(r["unit"]), "source": show(r["source"]),
                    "reported_at": when(r["reported_at"]), "deadline": when(r["deadline"]),
                    "late": bool(r["overdue"]), "days": f"{r['days_overdue']:.1f}" if r["overdue"] else "",
                    "lon": None if pt is None else round(pt.x, 6), "lat": None if pt is None else round(pt.y, 6),
                    "colour": cases.STATUS_COLOURS.get(str(r["status"]), "#555")})
    return out


_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_CACHE_LOCK = threading.Lock()


def by_version(store: Any, what: tuple[Any, ...], load: Callable[[], T], *, version: Any = None) -> T:
    """``load()``, remembered for ``what`` until the store changes (one entry per store and ``what``):
    every page of the desk reads the same problems, history and base layers, which change only on a write."""
    key = (store.location, *what)
    version = store.version() if version is None else version
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = load()
    with _CACHE_LOCK:
        _CACHE[key] = (version, value)
    return value


def problems_frame(store: Any) -> gpd.GeoDataFrame:
    """The whole problems layer as stored (the caller must not change it)."""
    return by_version(store, ("problems",), lambda: store.read("problems"))


def display_layer(project: Project, kind: str, coords: str, columns: list[str]) -> gpd.GeoDataFrame:
    """A base layer (grids, streets, alleys) in display coordinates (the desk's small maps draw parts of
    it on every page)."""
    store = project.store

    def load() -> gpd.GeoDataFrame:
        if store.has(kind):
            frame = to_display(store.read(kind, columns=columns), coords)
        else:
            frame = gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)
        return frame.set_geometry(shapely.simplify(frame.geometry.values, 1e-6))

    # kept until this layer is written (a report to the problems keeps it: every case page draws these)
    return by_version(store, ("display", kind, coords, tuple(columns)), load, version=store.change_token(kind))


def grids_geojson(project: Project, coords: str, *, code: str | None = None) -> str:
    """The grids' outlines (or one grid's) for the small maps, in display coordinates."""
    g = display_layer(project, "grids", coords, ["code"])
    if code is not None:
        g = g[g["code"] == code]
    return g[["code", "geometry"]].to_json(drop_id=True)


#: how far around a case its page's map draws the streets (degrees, about 300 m; the map's frame, not a rule)
STREETS_AROUND_DEG = 0.003


def streets_geojson(project: Project, coords: str, where: shapely.Point) -> str:
    """The streets and alleys near a case (``where``, display coordinates) with their names for the map."""
    d = STREETS_AROUND_DEG
    box = shapely.box(where.x - d, where.y - d, where.x + d, where.y + d)
    parts = []
    for kind in ("streets", "alleys"):
        lines = display_layer(project, kind, coords, ["name"])
        if len(lines):
            near = lines.iloc[lines.sindex.query(box, predicate="intersects")]
            parts.append(near.assign(kind=kind, name=_text(near["name"])))
    parts = [p for p in parts if len(p)]
    if not parts:
        return '{"type":"FeatureCollection","features":[]}'
    lines = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    return lines[["name", "kind", "geometry"]].to_json(drop_id=True)


def map_options(project: Project) -> dict[str, Any]:
    """The basemap of the settings (if any), for the case desk's small maps."""
    bm = project.settings.basemap
    return {"tiles": bm.url.replace("{tk}", bm.tk) if bm.url else None, "subdomains": bm.subdomains or "abc",
            "attribution": " · ".join(x for x in (bm.attribution, project.settings.project.attribution) if x),
            "max_zoom": bm.max_zoom or 19, "coords": bm.coords}


# ---------------------------------------------------------------- one case
def case_view(project: Project, user: User, case_id: str) -> dict[str, Any]:
    """Everything the case page shows; :class:`NotFound` for an unknown case (a case number is digits),
    :class:`~web._errors.Forbidden` for a case the account may not read."""
    if not case_id.isdigit() or not project.store.has("problems"):
        raise NotFound(f"没有编号为「{case_id}」的问题 (no case {case_id})")
    pid = int(case_id)
    store = project.store
    found = store.read_rows("problems", where=eq("problem_id", pid))  # one row by SQL, no frame
    if not found:
        raise NotFound(f"没有编号为 {pid} 的问题 (no problem {pid})")
    r = found[0]
    check_case_read(user, r["grid_code"])
    at = cases.store_as_of(store, settings=project.settings)
    [(r["overdue"], r["days_overdue"])] = cases.overdue_rows([r], as_of=at)
    spec = CATALOGUE["problems"]
    lang = project.settings.project.language
    t = texts(lang)
    status, grid = str(r["status"]), show(r["grid_code"]) or None
    facts = []
    for f in spec.fields:
        v = r.get(f.name)
        if f.name == cases.PRIORITY:  # not marked: no
            text = t["yes"] if v is not None and not pd.isna(v) and bool(v) else t["no"]
        elif f.dtype == "datetime":
            text = when(v)
        elif f.dtype == "bool":
            text = "" if v is None or pd.isna(v) else t["yes"] if bool(v) else t["no"]
        else:
            text = show(v)
        facts.append((f.zh if lang == "zh" else f.en, text, f.name))
    hist = history_frame(store, pid)
    since = cases.handling_started(hist).get(pid) if not hist.empty else None
    timeline = [{"at": when(h["at"]), "actor": show(h["actor"]), "from": show(h["from_status"]),
                 "to": show(h["to_status"]), "note": show(h["note"]),
                 "kind": "open" if not show(h["from_status"]) else "edit" if h["from_status"] == h["to_status"]
                 else "step"} for _, h in hist.iterrows()]
    photos = []
    mine = store.read_table(intake.PHOTO_TABLE, where=eq("problem_id", pid))  # its rows only, by SQL
    if not mine.empty:
        for _, p in mine.sort_values("uploaded_at", kind="stable").iterrows():
            after = cases.after_photo_taken([p["uploaded_at"]], since) if since is not None and pd.notna(since) \
                else False
            name = str(p["path"]).rsplit("/", 1)[-1]
            photos.append({"url": f"/api/problems/{pid}/photos/{name}", "after": after,
                           "at": when(p["uploaded_at"]), "by": show(p.get("uploaded_by"))})
    coords = project.settings.basemap.coords
    disp = display_geometries([r["geometry"]], store_crs(store), coords)[0]
    pt = disp if disp.geom_type == "Point" else disp.representative_point()
    priority = bool(r.get(cases.PRIORITY)) if pd.notna(r.get(cases.PRIORITY, None)) else False
    needs_photo = project.settings.problems.after_photo_required
    has_after = any(p["after"] for p in photos)
    steps = [{"to": s, "photo": (status, s) == cases.HAND_IN and needs_photo and not has_after}
             for s in user.next_steps(status, grid)]
    waiting = "" if steps else who_acts(status, lang)
    return {"id": pid, "status": status, "waiting": waiting, "grid": grid, "facts": facts, "timeline": timeline,
            "photos": photos,
            "late": bool(r["overdue"]), "days": f"{r['days_overdue']:.1f}" if r["overdue"] else "",
            "priority": priority, "steps": steps, "may_photo": user.may("photo", grid),
            "may_priority": user.may("priority", grid), "category": show(r["category"]),
            "description": show(r["description"]), "deadline": when(r["deadline"]),
            "point": [round(pt.x, 6), round(pt.y, 6)], "colour": cases.STATUS_COLOURS.get(status, "#555"),
            "grid_geojson": grids_geojson(project, coords, code=grid) if grid else "null",
            "streets_geojson": streets_geojson(project, coords, pt),
            "map": json.dumps(map_options(project), ensure_ascii=False)}


def who_acts(status: str, lang: str) -> str:
    """Who may take the next steps of a case in ``status`` (from :data:`layers.cases.PERMISSIONS`), as a
    sentence; empty for a closed case."""
    nxt = cases.TRANSITIONS.get(status, ())
    if not nxt:
        return ""
    names = cases.ROLE_NAMES["en" if lang == "en" else "zh"]
    roles = [r for r in cases.ROLES if any(r in cases.PERMISSIONS[(status, b)] for b in nxt)]
    steps = "、".join(f"{status} → {b}" for b in nxt)
    return texts(lang)["c_waiting"].format(steps=steps, who="、".join(names[r] for r in roles))


def history_frame(store: Any, problem_id: int) -> pd.DataFrame:
    """The history rows of one case, oldest first (its rows only, by SQL: the table has ~5 per case)."""
    if not store.has(cases.HISTORY_TABLE):
        return pd.DataFrame(columns=list(cases.HISTORY_COLUMNS))
    table = store.read_table(cases.HISTORY_TABLE, where=eq("problem_id", int(problem_id)))
    if table.empty:
        return pd.DataFrame(columns=list(cases.HISTORY_COLUMNS))
    table["at"] = pd.to_datetime(table["at"], errors="coerce")
    table["problem_id"] = pd.to_numeric(table["problem_id"], errors="coerce")
    return table.sort_values("at", kind="stable")
