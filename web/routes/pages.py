"""The county map page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from sanigrid.layers.cases import ROLE_NAMES
from sanigrid.web.deps import CurrentUser, ProjectDep
from sanigrid.web.mappage import build_map, page_html
from sanigrid.web.printmap import THEMES, county_print
from sanigrid.web.routes.layers import PRINT_RESPONSE
from sanigrid.web.texts import texts

router = APIRouter(tags=["pages 页面"])


@router.get("/", response_class=HTMLResponse, summary="全县地图 (the county map)")
def county_map(project: ProjectDep, user: CurrentUser) -> str:
    t = texts(project.settings.project.language)
    links = [(t["print"], "/map.pdf?theme=ranking&paper=A3"), (t["archive"], "/archive")]
    if user.role == "office":  # the office's own desk and the API documentation: for the office only
        links += [(t["dashboard"], "/dashboard"), (t["api"], "/docs")]
    links.append((t["logout"], "/logout"))
    if user.role == "grid_head" and user.grid_code:
        links.insert(0, (f"{t['open_page']} {user.grid_code}", f"/grids/{user.grid_code}"))
    role = ROLE_NAMES[project.settings.project.language][user.role]
    m = build_map(project, user_label=f"{user.name} ({role})", links=links)
    return page_html(m, title=project.settings.project.name, lang=project.settings.project.language)


@router.get("/map.{fmt}", summary="全县专题打印地图 (A3/A4 横向 PDF 或 PNG): 排名、覆盖、热点、背街小巷",
            response_class=Response, responses=PRINT_RESPONSE)
async def county_print_map(
    fmt: Literal["png", "pdf"], project: ProjectDep, user: CurrentUser,
    theme: Annotated[Literal[tuple(THEMES)], Query(description="ranking | coverage | problems | alleys")] = "ranking",  # type: ignore[valid-type]
    paper: Annotated[Literal["A4", "A3"], Query()] = "A3",
    kind: Annotated[str, Query(description="facility kind of the coverage theme")] = "toilets",
) -> Response:
    data = await run_in_threadpool(county_print, project, theme=theme, paper=paper, fmt=fmt, facility_kind=kind)
    media = "image/png" if fmt == "png" else "application/pdf"
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f"inline; filename=county_{theme}_{paper}.{fmt}"})
