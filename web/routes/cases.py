"""The case desk's pages: the case list (``/cases``, its Excel export) and a case's page (``/cases/{id}``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from sanigrid.layers import cases
from sanigrid.layers.catalogue import PROBLEM_SOURCES
from sanigrid.web import casedesk
from sanigrid.web._errors import Invalid
from sanigrid.web.casedesk import CaseQuery
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.routes.layers import XLSX_RESPONSE, xlsx_response
from sanigrid.web.templating import render
from sanigrid.web.texts import texts

router = APIRouter(tags=["cases 案件"])

StatusQ = Annotated[list[str], Query(description="状态, 可多选; open = 未结案 (any of these)")]
TextQ = Annotated[str, Query(max_length=200)]
FlagQ = Annotated[str, Query(description="1 = 是, 0 = 否, 空 = 全部 (yes / no / either)")]
FromQ = Annotated[str, Query(alias="from", description="上报日期起 YYYY-MM-DD (empty: no limit)")]
ToQ = Annotated[str, Query(alias="to", description="上报日期止 YYYY-MM-DD, 含当日 (empty: no limit)")]


def _flag(name: str, value: str) -> bool | None:
    """A yes/no filter of the form (an empty choice: either)."""
    v = value.strip().lower()
    if v in ("", "all"):
        return None
    if v in ("1", "true", "yes", "是"):
        return True
    if v in ("0", "false", "no", "否"):
        return False
    raise Invalid(f"{name}={value}: 只能是 1 (是)、0 (否) 或留空 (1, 0 or empty)")


def _day(name: str, value: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{name}={value}: 日期格式应为 YYYY-MM-DD (a date like 2026-11-01)") from None


def _query(status: list[str], category: str, source: str, grid: str, unit: str, date_from: str, date_to: str,
           overdue: str, priority: str, q: str, sort: str, page: int) -> CaseQuery:
    return CaseQuery(status=tuple(s for s in status if s), category=category, source=source, grid=grid, unit=unit,
                     date_from=_day("from", date_from), date_to=_day("to", date_to), overdue=_flag("overdue", overdue),
                     priority=_flag("priority", priority), q=q, sort=sort or casedesk.DEFAULT_SORT, page=page)


def _label(project, user) -> str:
    lang = project.settings.project.language
    return f"{user.name} ({cases.ROLE_NAMES[lang][user.role]})"


@router.get("/cases", response_class=HTMLResponse, summary="问题清单 (the case list: filters as query parameters)")
def case_list(project: ProjectDep, user: CurrentUser, status: StatusQ = [],  # noqa: B006 (FastAPI's list default)
              category: TextQ = "", source: TextQ = "", grid: TextQ = "", unit: TextQ = "",
              date_from: FromQ = "",
              date_to: ToQ = "", overdue: FlagQ = "",
              priority: FlagQ = "", q: TextQ = "", sort: TextQ = casedesk.DEFAULT_SORT,
              page: Annotated[int, Query(ge=1)] = 1) -> str:
    query = _query(status, category, source, grid, unit, date_from, date_to, overdue, priority, q, sort, page)
    per = project.settings.web.cases_per_page
    view = casedesk.list_page(project, user, query, per_page=per)  # counted, sorted and cut in the store
    query = view.query
    lang = project.settings.project.language
    coords = project.settings.basemap.coords
    rows = casedesk.list_rows(view.rows, coords)
    t = texts(lang)
    own = user.grid_code if user.role == "grid_head" else None
    return render(
        "cases.html", lang=lang, query=query, rows=rows, n=view.n, n_late=view.n_late,
        pages=view.pages, per=per, user_label=_label(project, user), own_grid=own,
        statuses=cases.STATUSES, categories=project.settings.problem_categories, sources=PROBLEM_SOURCES,
        units=view.units, sorts=casedesk.SORTS, export_url=query.url("/cases.xlsx", page=1),
        map_json=json.dumps(casedesk.map_options(project), ensure_ascii=False),
        grids_geojson=casedesk.grids_geojson(project, coords, code=own),
        js_texts={k: t[k] for k in ("c_confirm", "failed")})


@router.get("/cases.xlsx", response_class=Response, responses=XLSX_RESPONSE,
            summary="问题清单导出 (.xlsx): the list's view, every row (same query parameters as /cases)")
def case_list_xlsx(project: ProjectDep, user: CurrentUser, status: StatusQ = [],  # noqa: B006
                   category: TextQ = "", source: TextQ = "", grid: TextQ = "", unit: TextQ = "",
                   date_from: FromQ = "",
                   date_to: ToQ = "", overdue: FlagQ = "",
                   priority: FlagQ = "", q: TextQ = "", sort: TextQ = casedesk.DEFAULT_SORT) -> Response:
    query = _query(status, category, source, grid, unit, date_from, date_to, overdue, priority, q, sort, 1)
    frame = casedesk.list_frame(project, user, query)
    sheets, headers = casedesk.export_sheets(frame)
    return xlsx_response(sheets, "问题清单.xlsx", headers=headers)


@router.get("/cases/{problem_id}", response_class=HTMLResponse,
            summary="问题页面: 位置、字段、办理记录、照片与下一步办理 (a case's page)")
def case_page(problem_id: str, project: ProjectDep, user: CurrentUser) -> str:
    view = casedesk.case_view(project, user, problem_id)
    lang = project.settings.project.language
    t = texts(lang)
    return render("case.html", lang=lang, c=view, user_label=_label(project, user),
                  own_grid=user.grid_code if user.role == "grid_head" else None,
                  js_texts={k: t[k] for k in t if k.startswith("c_") or k in ("failed", "sending")})
