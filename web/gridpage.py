"""A grid head's page: the grid's open and overdue list, its scorecard row, its printable map."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd

from sanigrid.geo.problems import RESPONSIBILITY_HEADERS, responsibility_list
from sanigrid.layers import cases
from sanigrid.layers.catalogue import CATALOGUE, PROBLEM_SOURCES
from sanigrid.layers.export import OVERDUE_HEADERS
from sanigrid.layers.filters import eq
from sanigrid.layers.importers import map_attribution
from sanigrid.layers.project import Project
from sanigrid.web._errors import NotFound
from sanigrid.web.templating import render
from sanigrid.web.texts import texts

#: layers drawn on a grid's printed map, bottom to top (those present in the store); FACILITIES stands for
#: every kind with a facility preset in the settings, in their order
FACILITIES = "{facilities}"
PRINT_KINDS = ("grids", "hotspot_clusters", "streets", "alleys", "coverage_gaps", FACILITIES, "sample_selection",
               "problems")


def print_kinds(project: Project) -> list[str]:
    """The layers of a grid's printed map, the facility kinds of the settings' presets included."""
    kinds = list(project.settings.facilities)
    return [k for p in PRINT_KINDS for k in (kinds if p == FACILITIES else [p])]
LIST_COLUMNS = {"problem_id": "编号", "category": "问题类别", "description": "问题描述", "status": "状态",
                "reported_at": "上报时间", "deadline": "处置时限", "days_overdue": OVERDUE_HEADERS["days_overdue"],
                "unit": "责任单位"}


def grid_row(project: Project, code: str) -> dict[str, Any]:
    """One grid's fields and ``geometry`` (store CRS), by SQL; :class:`NotFound` for an unknown code."""
    rows = project.store.read_rows("grids", where=eq("code", code))
    if not rows:
        raise NotFound(f"没有网格「{code}」(no grid with this code)")
    return rows[0]


def open_list(project: Project, code: str) -> pd.DataFrame:
    """Open problems of a grid with ``overdue`` and ``days_overdue``, most overdue first."""
    store = project.store
    if not store.has("problems"):
        return pd.DataFrame(columns=list(LIST_COLUMNS) + ["overdue"])
    as_of = cases.store_as_of(store, settings=project.settings)
    # the grid's open cases only, by SQL (not its closed ones: a grid's year of reports is mostly closed)
    frame = store.read("problems", where=eq("grid_code", code) & cases.open_where(as_of=as_of))
    frame = cases.with_overdue(frame[cases.is_open(frame, as_of=as_of).to_numpy()], as_of=as_of)
    frame = frame.sort_values(["days_overdue", "deadline", "problem_id"], ascending=[False, True, True])
    return frame


def scorecard_row(project: Project, code: str) -> dict[str, Any] | None:
    store = project.store
    if not store.has("scorecard"):
        return None
    rows = store.read_rows("scorecard", where=eq("code", code))  # the grid's row, by SQL
    if not rows:
        return None
    r = rows[0]
    return {"rank": None if r.get("rank") is None else int(r["rank"]), "of": store.count("scorecard"),
            "score": None if r.get("score") is None else float(r["score"])}


def responsibility_sheets(project: Project, code: str | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """责任清单 of one grid (or all) from ``geo.problems.responsibility_list``, and its Chinese headers."""
    store = project.store
    problems = store.read("problems")
    as_of = cases.store_as_of(store, settings=project.settings)
    grids = store.read("grids")
    if code is not None:
        problems = problems[problems["grid_code"] == code]
        grids = grids[grids["code"] == code]
    return responsibility_list(problems, as_of=as_of, grids=grids), dict(RESPONSIBILITY_HEADERS)


def print_map(project: Project, code: str, *, paper: str, fmt: str) -> bytes:
    """The grid's printable map (PNG or PDF, landscape A4/A3), made with matplotlib."""
    from sanigrid.web.printmap import render_map

    g = grid_row(project, code)
    box = tuple(gpd.GeoSeries([g["geometry"]], crs=project.store.crs).buffer(60).total_bounds)
    layers: dict[str, gpd.GeoDataFrame] = {}
    for kind in print_kinds(project):
        if not project.store.has(kind):
            continue
        if kind == "problems":
            frame = open_list(project, code)
        else:
            frame = project.store.read(kind, bbox=box)
        if len(frame):
            layers[kind] = frame
    focus = f"本网格 {code}"  # the grid's own boundary on top (an unknown kind: drawn as a plain line)
    layers[focus] = gpd.GeoDataFrame(geometry=[g["geometry"].boundary], crs=project.store.crs)
    buf = io.BytesIO()
    name = g.get("name") or ""
    render_map(layers, title=f"{project.settings.project.name} 网格 {code} {name}".strip(), path_or_buffer=buf,
               paper=paper, bbox=box, attribution=map_attribution(project, layers),
               subtitle=f"网格长: {g.get('head') or '—'}  牵头单位: {g.get('lead_unit') or '—'}",
               map_date=date.today(), dpi=150, fmt=fmt)
    return buf.getvalue()


_LIST_FIELDS = ("problem_id", "category", "description", "status", "reported_at", "deadline")
_JS_TEXTS = ("picking", "no_where", "sending", "accepted", "dups", "need_where", "stepped", "failed")
_LOCATE_TEXTS = ("c_locating", "c_located", "c_no_place")
LIST_MAX_ROWS = 300  # rows listed on the page; the 责任清单 download has them all


def side_html(project: Project, code: str, *, user_label: str, can_write: bool = False,
              steps: Callable[[str], Sequence[str]] | None = None) -> str:
    """The right-hand panel of the grid page (template ``grid_side.html``, in the project's language).

    ``can_write``: the account may change this grid's problems, so the panel has the report form and,
    on each open problem, a button per legal next status (``sanigrid.js`` posts them to the JSON API).
    """
    lang = project.settings.project.language
    t = texts(lang)
    g = grid_row(project, code)
    facts = [(f.zh if lang == "zh" else f.en, _show(g.get(f.name), t))
             for f in CATALOGUE["grids"].fields if f.popup and f.name != "code"]
    sc = scorecard_row(project, code)
    rank = None if not sc else {**sc, "score": "—" if sc["score"] is None else f"{sc['score']:.1f}"}
    frame = open_list(project, code)
    n_late = int(frame["overdue"].sum()) if "overdue" in frame and len(frame) else 0
    rows = [{"id": int(r["problem_id"]), "category": _show(r["category"], t), "description": _show(r["description"], t),
             "status": _show(r["status"], t), "reported_at": _when(r["reported_at"]), "deadline": _when(r["deadline"]),
             "late": bool(r.get("overdue")), "days": _days(r), "steps": list(steps(str(r["status"])) if steps else ()),
             "priority": _flag(r.get(cases.PRIORITY))}
            for _, r in frame.head(LIST_MAX_ROWS).iterrows()]
    pspec = CATALOGUE["problems"]
    return render(
        "grid_side.html", lang=lang, code=code, name=_show(g.get("name"), t), user_label=user_label, facts=facts,
        rank=rank, rows=rows, n_open=len(frame), n_late=n_late, can_write=can_write,
        headers=[pspec.field(n).zh if lang == "zh" else pspec.field(n).en for n in _LIST_FIELDS],
        categories=[c.name for c in project.settings.problems.categories], sources=list(PROBLEM_SOURCES),
        js_texts={k: t[k] for k in _JS_TEXTS}, locate_texts={k: t[k] for k in _LOCATE_TEXTS})


def _show(v: Any, t: dict[str, str]) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "—"
    if v is True:
        return t["yes"]
    if v is False:
        return t["no"]
    return str(v)


def _flag(v: Any) -> bool:
    """A boolean field's value (missing: no)."""
    return v is not None and not pd.isna(v) and bool(v)


def _days(r: pd.Series) -> str:
    return f"{r['days_overdue']:.1f}" if r.get("overdue") else ""


def _when(v: Any) -> str:
    return "" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
