"""The office's dashboard page (``/dashboard``): trend charts and a link to every download and print."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from sanigrid.layers import cases
from sanigrid.web import dashboard
from sanigrid.web._errors import Forbidden
from sanigrid.web.casedesk import by_version
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.printmap import THEMES
from sanigrid.web.templating import render

router = APIRouter(tags=["pages 页面"])


def _has_route(request: Request, path: str) -> bool:
    return any(getattr(r, "path", None) == path for r in request.app.routes)


def download_links(project, request: Request) -> list[tuple[str, str]]:
    """(label, URL) of every Excel download the store can answer now."""
    store = project.store
    out: list[tuple[str, str]] = []
    if store.has("problems"):
        out += [("全部问题 (.xlsx)", "/api/layers/problems/xlsx"),
                ("未结案问题 (.xlsx)", "/api/layers/problems/xlsx?open=true"),
                ("责任清单 全县 (.xlsx)", "/api/downloads/responsibility.xlsx")]
    if store.has("scorecard"):
        out.append(("网格排名 (.xlsx)", "/api/downloads/scorecard.xlsx"))
    if _has_route(request, "/api/downloads/unit_ranking.xlsx"):
        from sanigrid.geo.scorecard import UNIT_RANKING_TABLE

        if store.has(UNIT_RANKING_TABLE):
            out.append(("职能部门排名通报 (.xlsx)", "/api/downloads/unit_ranking.xlsx"))
    if store.has("sample_selection") or store.has("sample_points"):
        out.append(("样本点清单 (.xlsx)", "/api/downloads/sample_points.xlsx"))
    for kind in ("coverage_gaps", "hotspot_clusters", "gi_cells", "rebounds", "suggested_sites"):
        if store.has(kind):
            from sanigrid.layers.catalogue import CATALOGUE

            out.append((f"{CATALOGUE[kind].zh} (.xlsx)", f"/api/layers/{kind}/xlsx"))
    return out


def print_links(project) -> list[tuple[str, str, str]]:
    """(theme name, A3 PDF URL, A4 PNG URL) of every printed theme whose layer is in the store
    (coverage once per facility kind of the settings)."""
    store = project.store
    out: list[tuple[str, str, str]] = []
    for key, theme in THEMES.items():
        if not store.has(theme.needs):
            continue
        kinds = list(project.settings.facilities) if key == "coverage" else [None]
        for kind in kinds:
            q = f"theme={key}" + (f"&kind={kind}" if kind else "")
            name = theme.zh + (f" · {project.settings.facility_title(kind)}" if kind else "")
            out.append((name, f"/map.pdf?{q}&paper=A3", f"/map.png?{q}&paper=A4"))
    return out


@router.get("/dashboard", response_class=HTMLResponse, summary="创卫办看板 (the office's dashboard: trends, downloads)")
def dashboard_page(request: Request, project: ProjectDep, user: CurrentUser) -> str:
    if user.role != "office":
        raise Forbidden(f"看板只对创卫办账号开放 (the dashboard is for the office; account {user.name} is {user.role})")
    lang = project.settings.project.language
    store = project.store
    as_of = cases.store_as_of(store, settings=project.settings)
    # the charts change only with the store or the instant they count at (fixed for a snapshot): made once
    charts = by_version(store, ("dashboard",), lambda: _charts(store, as_of), version=(store.version(), as_of))
    pages = [("全县地图", "/")] + ([("案件列表", "/cases")] if _has_route(request, "/cases") else [])
    pages.append(("接口文档", "/docs"))
    return render("dashboard.html", lang=lang, name=project.settings.project.name, user=user,
                  as_of=as_of, charts=charts, downloads=download_links(project, request),
                  prints=print_links(project), pages=pages)


def _charts(store, as_of) -> list[tuple[str, Markup]]:
    """The dashboard's four trend charts (none without problems)."""
    charts: list[tuple[str, Markup]] = []
    if store.has("problems"):
        tr = dashboard.trends_in_store(store, as_of=as_of)  # counted in the store: no row read
        names = {}
        if store.has("grids"):
            g = store.read("grids", columns=["code", "name"])
            names = {str(c): f"{n} {c[-4:]}" for c, n in zip(g["code"], g["name"], strict=True)}
        charts = [
            ("每周上报问题数 (按类别)", Markup(dashboard.stacked_weeks_svg(tr.weekly, title="每周上报问题数"))),
            ("未结案与逾期 (每周末)", Markup(dashboard.lines_svg(
                tr.open_over_time, {"open": "未结案", "overdue": "逾期"}, title="未结案与逾期"))),
            ("按期结案率 · 责任单位 (最低在上; 数字为结案数)",
             Markup(dashboard.rate_bars_svg(tr.by_unit, title="按期结案率 责任单位"))),
            ("按期结案率 · 网格 (最低在上; 数字为结案数)",
             Markup(dashboard.rate_bars_svg(tr.by_grid, title="按期结案率 网格", names=names))),
        ]
    return charts
