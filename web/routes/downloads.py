"""Excel downloads: scorecard, 责任清单 (all grids or one), sample-point list."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from sanigrid.layers.export import zh_headers
from sanigrid.web import gridpage
from sanigrid.web._errors import NotFound
from sanigrid.web.access import case_scope
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.routes.layers import XLSX_RESPONSE, present_spec, xlsx_response

router = APIRouter(prefix="/api/downloads", tags=["downloads 下载"])


@router.get("/scorecard.xlsx", summary="网格排名 (.xlsx)", response_class=Response, responses=XLSX_RESPONSE)
def scorecard_xlsx(project: ProjectDep, user: CurrentUser) -> Response:
    present_spec(project, "scorecard")
    frame = project.store.read("scorecard")
    if "rank" in frame:
        frame = frame.sort_values("rank")
    return xlsx_response({"网格排名": frame}, "网格排名.xlsx", headers=zh_headers("scorecard"))


@router.get("/unit_ranking.xlsx", summary="职能部门排名通报 (.xlsx; the last `sanigrid rank --by unit`)",
            response_class=Response, responses=XLSX_RESPONSE)
def unit_ranking_xlsx(project: ProjectDep, user: CurrentUser) -> Response:
    from sanigrid.geo.scorecard import UNIT_RANKING_TABLE, unit_report_table

    frame = project.store.read_table(UNIT_RANKING_TABLE) if project.store.has(UNIT_RANKING_TABLE) else None
    if frame is None or not len(frame):
        raise NotFound("没有职能部门排名; 先运行 `sanigrid rank --by unit` (no department ranking yet)")
    return xlsx_response({"职能部门排名通报": unit_report_table(frame.sort_values(["rank", "unit"]))},
                         "职能部门排名通报.xlsx", headers={})


@router.get("/responsibility.xlsx", summary="责任清单 (.xlsx; one grid with ?grid=)", response_class=Response,
            responses=XLSX_RESPONSE)
def responsibility_xlsx(project: ProjectDep, user: CurrentUser, grid: str | None = None) -> Response:
    if grid:
        gridpage.grid_row(project, grid)  # an unknown grid is 404 for every role, before any 403
    grid = case_scope(user, "problems", grid)  # a grid head gets their own grid's list, asked or not
    sheets, headers = gridpage.responsibility_sheets(project, grid)
    return xlsx_response(sheets, f"责任清单{'_' + grid if grid else ''}.xlsx", headers=headers)


@router.get("/sample_points.xlsx", summary="样本点清单 (.xlsx: the selection, else all sample points)",
            response_class=Response, responses=XLSX_RESPONSE)
def sample_points_xlsx(project: ProjectDep, user: CurrentUser) -> Response:
    for kind in ("sample_selection", "sample_points"):
        if project.store.has(kind):
            frame = project.store.read(kind)
            return xlsx_response({"样本点": frame}, "样本点清单.xlsx", headers=zh_headers(kind))
    raise NotFound("没有样本点图层; 先导入样本点或运行 `sanigrid sample` (no sample points yet)")
