"""A page per grid (``/grids/{code}``) and its downloads: 责任清单 .xlsx and the printable map."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from sanigrid.layers.cases import ROLE_NAMES
from sanigrid.web import gridpage
from sanigrid.web.access import check_grid_read
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.features import records
from sanigrid.web.mappage import build_map, page_html
from sanigrid.web.routes.layers import PRINT_RESPONSE, XLSX_RESPONSE, xlsx_response

router = APIRouter(tags=["grids 网格"])


@router.get("/grids/{code}", response_class=HTMLResponse, summary="网格页面 (the grid head's page)")
def grid_page(code: str, project: ProjectDep, user: CurrentUser) -> str:
    g = gridpage.grid_row(project, code)  # an unknown grid is 404 for every role, before the 403 of another's
    check_grid_read(user, code)
    label = f"{user.name} ({ROLE_NAMES[project.settings.project.language][user.role]})"
    side = gridpage.side_html(project, code, user_label=label, can_write=user.may("report", code),
                              steps=(lambda status: user.next_steps(status, code)) if user.can_write else None)
    m = build_map(project, grid=code, width="58%", user_label=label, title=f"网格 {code} {g.get('name') or ''}")
    return page_html(m, title=f"网格 {code} · {project.settings.project.name}", extra_html=side,
                     lang=project.settings.project.language)


@router.get("/api/grids/{code}/open", summary="网格未结案问题清单 (most overdue first)")
def grid_open(code: str, project: ProjectDep, user: CurrentUser) -> list[dict]:
    from sanigrid.layers.catalogue import CATALOGUE

    gridpage.grid_row(project, code)  # an unknown grid is 404 for every role, before the 403 of another's
    check_grid_read(user, code)
    frame = gridpage.open_list(project, code)
    return records(frame, CATALOGUE["problems"], CATALOGUE["problems"].field_names, extra=("overdue", "days_overdue"))


@router.get("/grids/{code}/responsibility.xlsx", summary="网格责任清单 (.xlsx)", response_class=Response,
            responses=XLSX_RESPONSE)
def grid_xlsx(code: str, project: ProjectDep, user: CurrentUser) -> Response:
    gridpage.grid_row(project, code)  # an unknown grid is 404 for every role, before the 403 of another's
    check_grid_read(user, code)
    sheets, headers = gridpage.responsibility_sheets(project, code)
    return xlsx_response(sheets, f"{code}_责任清单.xlsx", headers=headers)


@router.get("/grids/{code}/map.{fmt}", summary="网格打印地图 (A4/A3 横向 PNG 或 PDF)", response_class=Response,
            responses=PRINT_RESPONSE)
async def grid_print(code: str, fmt: Literal["png", "pdf"], project: ProjectDep, user: CurrentUser,
                     paper: Annotated[Literal["A4", "A3"], Query()] = "A4") -> Response:
    await run_in_threadpool(gridpage.grid_row, project, code)
    check_grid_read(user, code)
    data = await run_in_threadpool(gridpage.print_map, project, code, paper=paper, fmt=fmt)
    media = "image/png" if fmt == "png" else "application/pdf"
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f"inline; filename=grid_{code}_{paper}.{fmt}"})
