"""The county map page."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from web.auth import ROLE_ZH
from web.deps import CurrentUser, ProjectDep
from web.mappage import TEXTS, build_map, page_html

router = APIRouter(tags=["pages 页面"])


@router.get("/", response_class=HTMLResponse, summary="全县地图 (the county map)")
def county_map(project: ProjectDep, user: CurrentUser) -> str:
    t = TEXTS[project.settings.project.language]
    links = [(t["api"], "/docs"), (t["logout"], "/logout")]
    if user.role == "grid_head" and user.grid_code:
        links.insert(0, (f"{t['open_page']} {user.grid_code}", f"/grids/{user.grid_code}"))
    m = build_map(project, user_label=f"{user.name} ({ROLE_ZH[user.role]})", links=links)
    return page_html(m, title=project.settings.project.name, lang=project.settings.project.language)
