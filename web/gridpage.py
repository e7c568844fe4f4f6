"""A grid head's page: the grid's open and overdue list, its scorecard row, its printable map."""

from __future__ import annotations

import html
import io
import json
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd

from sanigrid.geo.problems import CLOSED, TRANSITIONS
from sanigrid.layers.catalogue import CATALOGUE, PROBLEM_SOURCES
from sanigrid.layers.export import zh_headers
from sanigrid.layers.filters import eq, ne
from sanigrid.layers.importers import map_attribution
from sanigrid.layers.project import Project
from sanigrid.web._errors import NotFound
from sanigrid.web.features import problems_as_of, with_overdue

#: layers drawn on a grid's printed map, bottom to top (those present in the store)
PRINT_KINDS = ("grids", "hotspot_clusters", "streets", "alleys", "coverage_gaps", "markets",
               "toilets", "transfer_stations", "collection_points", "sample_selection", "problems")
LIST_COLUMNS = {"problem_id": "编号", "category": "问题类别", "description": "问题描述", "status": "状态",
                "reported_at": "上报时间", "deadline": "处置时限", "days_overdue": "逾期天数", "unit": "责任单位"}


def grid_row(project: Project, code: str) -> pd.Series:
    g = project.store.read("grids", where=eq("code", code))
    if g.empty:
        raise NotFound(f"没有网格「{code}」(no grid with this code)")
    return g.iloc[0]


def open_list(project: Project, code: str) -> pd.DataFrame:
    """Open problems of a grid with ``overdue`` and ``days_overdue``, most overdue first."""
    store = project.store
    if not store.has("problems"):
        return pd.DataFrame(columns=list(LIST_COLUMNS) + ["overdue"])
    frame = store.read("problems", where=eq("grid_code", code) & ne("status", CLOSED))
    everything_as_of = problems_as_of(store, store.read("problems", columns=["reported_at"]))
    frame = with_overdue(frame, as_of=everything_as_of)
    frame = frame.sort_values(["days_overdue", "deadline", "problem_id"], ascending=[False, True, True])
    return frame


def scorecard_row(project: Project, code: str) -> dict[str, Any] | None:
    if not project.store.has("scorecard"):
        return None
    sc = project.store.read("scorecard")
    if sc.empty or "code" not in sc:
        return None
    row = sc[sc["code"] == code]
    if row.empty:
        return None
    r = row.iloc[0]
    return {"rank": None if pd.isna(r.get("rank")) else int(r["rank"]), "of": len(sc),
            "score": None if pd.isna(r.get("score")) else float(r["score"])}


def responsibility_sheets(project: Project, code: str | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """责任清单 of one grid (or all), and its Chinese headers.

    Uses ``geo.problems.responsibility_list`` (summary sheet + one sheet per grid) when that exists;
    otherwise one sheet of the grid's open problems, most overdue first.
    """
    import sanigrid.geo.problems as gp

    fn = getattr(gp, "responsibility_list", None)
    headers = dict(getattr(gp, "RESPONSIBILITY_HEADERS", None) or zh_headers(
        "problems", {"days_overdue": "逾期天数", "overdue": "逾期"}))
    store = project.store
    if fn is not None:
        problems = store.read("problems")
        as_of = problems_as_of(store, problems)
        grids = store.read("grids")
        if code is not None:
            problems = problems[problems["grid_code"] == code]
            grids = grids[grids["code"] == code]
        return fn(problems, as_of=as_of, grids=grids), headers
    codes = [code] if code else sorted(str(c) for c in store.read("grids", columns=["code"])["code"])
    sheets = {}
    for c in codes:
        frame = open_list(project, c)
        sheets[f"网格{c}"] = frame[[k for k in list(LIST_COLUMNS) + ["grid_code"] if k in frame.columns]]
    return sheets, headers


def print_map(project: Project, code: str, *, paper: str, fmt: str) -> bytes:
    """The grid's printable map (PNG or PDF, landscape A4/A3), made with matplotlib."""
    from sanigrid.web.printmap import render_map

    g = grid_row(project, code)
    box = tuple(gpd.GeoSeries([g.geometry], crs=project.store.crs).buffer(60).total_bounds)
    layers: dict[str, gpd.GeoDataFrame] = {}
    for kind in PRINT_KINDS:
        if not project.store.has(kind):
            continue
        if kind == "problems":
            frame = open_list(project, code)
        else:
            frame = project.store.read(kind, bbox=box)
        if len(frame):
            layers[kind] = frame
    focus = f"本网格 {code}"  # the grid's own boundary on top (an unknown kind: drawn as a plain line)
    layers[focus] = gpd.GeoDataFrame(geometry=[g.geometry.boundary], crs=project.store.crs)
    buf = io.BytesIO()
    name = g.get("name") or ""
    render_map(layers, title=f"{project.settings.project.name} 网格 {code} {name}".strip(), path_or_buffer=buf,
               paper=paper, bbox=box, attribution=map_attribution(project, layers),
               subtitle=f"网格长: {g.get('head') or '—'}  牵头单位: {g.get('lead_unit') or '—'}",
               map_date=date.today(), dpi=150, fmt=fmt)
    return buf.getvalue()


SIDE_TEXTS: dict[str, dict[str, str]] = {
    "zh": {"map": "← 全县地图", "logout": "退出", "grid": "网格", "ranking": "网格排名", "rank": "排名",
           "score": "综合得分", "no_rank": "尚无网格排名 (运行 <code>sanigrid analyse</code> 生成)",
           "downloads": "下载", "duty": "责任清单 (.xlsx)", "png": "打印地图 A4 PNG", "pdf": "打印地图 A3 PDF",
           "open": "未结案问题 {n} 件, 其中逾期 <span class='sg-late'>{late}</span> 件",
           "more": "共 {n} 件, 仅列出前 300 件; 完整清单请下载 Excel.", "none": "本网格没有未结案的问题.",
           "days": "逾期天数", "yes": "是", "no": "否",
           "report": "上报问题", "category": "问题类别", "description": "问题描述", "source": "来源",
           "where": "位置", "pick": "在地图上点选", "picking": "请在左侧地图上点击问题所在位置",
           "no_where": "尚未选择位置", "submit": "上报", "sending": "正在提交…",
           "accepted": "已受理 编号 {id}, 处置时限 {deadline}", "dups": "可能重复: {ids}",
           "need_where": "请先在地图上点选问题位置", "step": "办理", "note": "办理意见",
           "stepped": "编号 {id}: {from} → {to}", "failed": "提交失败"},
    "en": {"map": "← County map", "logout": "log out", "grid": "Grid", "ranking": "Ranking", "rank": "Rank",
           "score": "score", "no_rank": "No ranking yet (run <code>sanigrid analyse</code>)",
           "downloads": "Downloads", "duty": "Responsibility list (.xlsx)", "png": "Printable map A4 PNG",
           "pdf": "Printable map A3 PDF", "open": "{n} open problems, <span class='sg-late'>{late}</span> overdue",
           "more": "{n} in all, the first 300 listed; download the Excel file for all.",
           "none": "No open problems in this grid.", "days": "Days overdue", "yes": "yes", "no": "no",
           "report": "Report a problem", "category": "Category", "description": "Description",
           "source": "Source", "where": "Location", "pick": "Pick on the map",
           "picking": "Click the problem's location on the map", "no_where": "no location chosen yet",
           "submit": "Report", "sending": "sending…", "accepted": "Accepted: no. {id}, deadline {deadline}",
           "dups": "possible duplicates: {ids}", "need_where": "Pick the problem's location on the map first",
           "step": "Action", "note": "note", "stepped": "No. {id}: {from} → {to}",
           "failed": "failed"},
}
_LIST_FIELDS = ("problem_id", "category", "description", "status", "reported_at", "deadline")


def side_html(project: Project, code: str, *, user_label: str, can_write: bool = False) -> str:
    """The right-hand panel of the grid page (in the project's language).

    ``can_write``: the account may change this grid's problems, so the panel has the report form and,
    on each open problem, a button per legal next status (``sanigrid.js`` posts them to the JSON API).
    """
    lang = project.settings.project.language
    t = SIDE_TEXTS[lang]
    g = grid_row(project, code)
    spec = CATALOGUE["grids"]
    kv = "".join(f"<tr><td>{html.escape(f.zh if lang == 'zh' else f.en)}</td>"
                 f"<td>{html.escape(_show(g.get(f.name), t))}</td></tr>"
                 for f in spec.fields if f.popup and f.name != "code")
    sc = scorecard_row(project, code)
    if sc:
        score = "—" if sc["score"] is None else f"{sc['score']:.1f}"
        sc_html = (f"<p>{t['rank']} <span class='sg-rank'>{sc['rank']}</span> / {sc['of']} &nbsp; "
                   f"{t['score']} <b>{score}</b></p>")
    else:
        sc_html = f"<p>{t['no_rank']}</p>"
    frame = open_list(project, code)
    late = frame[frame["overdue"]] if "overdue" in frame else frame.iloc[0:0]
    rows = []
    for _, r in frame.head(300).iterrows():
        cls = " class='late'" if r.get("overdue") else ""
        rows.append(
            f"<tr{cls}><td>{int(r['problem_id'])}</td><td>{html.escape(_show(r['category'], t))}</td>"
            f"<td>{html.escape(_show(r['description'], t))}</td><td>{html.escape(_show(r['status'], t))}</td>"
            f"<td>{_when(r['reported_at'])}</td><td>{_when(r['deadline'])}</td>"
            f"<td class='days'>{_days(r)}</td>" + (_step_cell(r, t) if can_write else "") + "</tr>")
    more = f"<p>{t['more'].format(n=len(frame))}</p>" if len(frame) > 300 else ""
    pspec = CATALOGUE["problems"]
    heads = "".join(f"<th>{html.escape(pspec.field(n).zh if lang == 'zh' else pspec.field(n).en)}</th>"
                    for n in _LIST_FIELDS)
    step_head = f"<th>{t['step']}</th>" if can_write else ""
    table = (f"<table class='sg-list'><thead><tr>{heads}<th>{t['days']}</th>{step_head}</tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>" if rows else f"<p>{t['none']}</p>")
    dl = (f"<p class='sg-dl'><a href='/grids/{code}/responsibility.xlsx'><i class='fa-solid fa-file-excel'></i> "
          f"{t['duty']}</a><a href='/grids/{code}/map.png?paper=A4'><i class='fa-solid fa-image'></i> "
          f"{t['png']}</a><a href='/grids/{code}/map.pdf?paper=A3'><i class='fa-solid fa-file-pdf'></i> "
          f"{t['pdf']}</a></p>")
    form = _report_form(project, t) if can_write else ""
    texts = html.escape(json.dumps({k: t[k] for k in _JS_TEXTS}, ensure_ascii=False))
    return (f"<div class='sg-side sg-page' data-t='{texts}'><p><a href='/'>{t['map']}</a> · "
            f"{html.escape(user_label)} · "
            f"<a href='/logout'>{t['logout']}</a></p>"
            f"<h1>{t['grid']} {html.escape(code)} {html.escape(_show(g.get('name'), t))}</h1>"
            f"<table class='sg-kv'>{kv}</table><h2>{t['ranking']}</h2>{sc_html}<h2>{t['downloads']}</h2>{dl}"
            f"{form}<div id='sg-open'><h2 id='open-list'>{t['open'].format(n=len(frame), late=len(late))}</h2>"
            f"<p id='sg-step-msg' class='sg-msg' role='status'></p>{more}{table}</div></div>")


_JS_TEXTS = ("picking", "no_where", "sending", "accepted", "dups", "need_where", "stepped", "failed")


def _report_form(project: Project, t: dict[str, str]) -> str:
    """上报问题: category, description, source; the location is picked on the map (sanigrid.js)."""
    def options(values: Any) -> str:
        return "".join(f"<option value='{html.escape(v)}'>{html.escape(v)}</option>" for v in values)

    cats = options(c.name for c in project.settings.problems.categories)
    sources = options(PROBLEM_SOURCES)
    return (f"<h2>{t['report']}</h2><form id='sg-report' class='sg-form' novalidate>"
            f"<label>{t['category']} <select name='category' required>{cats}</select></label>"
            f"<label>{t['source']} <select name='source'>{sources}</select></label>"
            f"<label class='sg-wide'>{t['description']} <textarea name='description' rows='2' maxlength='2000'>"
            f"</textarea></label>"
            f"<div class='sg-wide'>{t['where']}: <span class='sg-where'>{t['no_where']}</span> "
            f"<button type='button' class='sg-pick'>{t['pick']}</button></div>"
            f"<input type='hidden' name='lon'><input type='hidden' name='lat'>"
            f"<div class='sg-wide'><button type='submit'>{t['submit']}</button> "
            f"<span class='sg-msg' role='status'></span></div></form>")


def _step_cell(r: pd.Series, t: dict[str, str]) -> str:
    """Buttons for each legal next status of one open problem (geo.problems.TRANSITIONS) and a note."""
    pid = int(r["problem_id"])
    buttons = "".join(f"<button type='button' class='sg-step' data-id='{pid}' data-to='{html.escape(s)}'>"
                      f"→ {html.escape(s)}</button>" for s in TRANSITIONS.get(str(r["status"]), ()))
    if not buttons:
        return "<td></td>"
    return (f"<td class='sg-act'><input class='sg-note' data-id='{pid}' maxlength='2000' "
            f"placeholder='{html.escape(t['note'])}' aria-label='{html.escape(t['note'])}'>{buttons}</td>")


def _show(v: Any, t: dict[str, str] = SIDE_TEXTS["zh"]) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "—"
    if v is True:
        return t["yes"]
    if v is False:
        return t["no"]
    return str(v)


def _days(r: pd.Series) -> str:
    return f"{r['days_overdue']:.1f}" if r.get("overdue") else ""


def _when(v: Any) -> str:
    return "" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
