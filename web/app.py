"""The FastAPI app: composes the routers, serves the static assets, maps sanigrid errors to 4xx.

``create_app(project)`` serves one county project; ``uvicorn --factory web.app:app_from_env``
serves the project named by ``SANIGRID_PROJECT`` (see :mod:`web.settings`). OpenAPI docs are at
``/docs``, with Swagger UI served by the app from the installed fastapi-offline wheel (FastAPI's
default page would load it from a CDN).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sanigrid.layers._errors import CatalogueError, IllegalTransition, PhotoRequired, SanigridError, StepForbidden
from sanigrid.layers.project import Project, open_project
from sanigrid.web._errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts, Unauthorized
from sanigrid.web.assets import mount_docs, mount_static
from sanigrid.web.auth import SESSIONS_FILE, LoginThrottle, Sessions
from sanigrid.web.limits import FORM_OVERHEAD_BYTES, BodyLimit, WriteGate
from sanigrid.web.routes import archive, auth, cases, dashboard, downloads, grids, layers, pages, problems
from sanigrid.web.settings import AppSettings
from sanigrid.web.templating import render
from sanigrid.web.texts import texts

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401), (Forbidden, 403), (StepForbidden, 403), (NotFound, 404), (CatalogueError, 404),
    (Conflict, 409), (IllegalTransition, 409), (PhotoRequired, 409), (Invalid, 422), (TooManyAttempts, 429),
)


def status_for(exc: SanigridError) -> int:
    """The HTTP status of a sanigrid error (400 for any kind not listed)."""
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return 422 if isinstance(exc, ValueError) else 400


def _wants_html(request: Request) -> bool:
    """A browser asking for a page (not the JSON API): errors become an HTML page in the interface language."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML error page of ``status`` (401/403/404/409/422 have their own heading) with ``message``."""
    project: Project = request.app.state.project
    lang = project.settings.project.language
    t = texts(lang)
    user = getattr(request.state, "user", None)
    own = getattr(user, "grid_code", None) if getattr(user, "role", None) == "grid_head" else None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = render("error.html", lang=lang, status=status, heading=t.get(f"error_{status}", t["error_other"]),
                  message=message, own_grid=own, next_url=target)
    return HTMLResponse(page, status_code=status)


def create_app(project: Project | str | Path, *, settings: AppSettings | None = None, warm: bool = True) -> FastAPI:
    """The app serving ``project`` (a :class:`Project` or its folder).

    ``warm`` builds the map's caches in a background thread when the server starts, so the first
    page view does not pay for them.
    """
    settings = settings or AppSettings()
    if not isinstance(project, Project):
        project = open_project(project)
    served = project
    if hasattr(project.store, "keep_writer"):
        project.store.keep_writer = True  # a server writes often: its GeoPackage writing connection stays open

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=warm_caches, args=(served,), name="sanigrid-warm", daemon=True).start()
        yield

    app = FastAPI(
        lifespan=lifespan,
        title=f"sanigrid · {project.settings.project.name}",
        description="创卫网格化管理: 图层 (GeoJSON, WGS84), 问题受理与办理, 网格页面, Excel 下载. "
                    "\n\n登录: POST /api/auth/token (账号+密码) 得到 Bearer 令牌, "
                    "或使用 `sanigrid user add` 给出的 API 令牌.",
        version="0.1.0", docs_url=None, redoc_url=None,
    )
    app.state.project = project
    app.state.sessions = Sessions(hours=project.settings.web.session_hours, path=project.root / SESSIONS_FILE)
    w = project.settings.web
    app.state.login_throttle = LoginThrottle(per_account=w.login_max_failures,
                                             per_address=w.login_max_failures_per_address,
                                             window_s=w.login_window_minutes * 60)
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes)
    app.add_middleware(BodyLimit, max_bytes=int(w.photo_max_mb * 1024 * 1024) + FORM_OVERHEAD_BYTES)
    app.add_middleware(WriteGate)  # outermost: a waiting write costs the event loop nothing
    mount_static(app)
    mount_docs(app, title=app.title)
    for r in (auth.router, pages.router, layers.router, problems.router, grids.router, downloads.router,
              cases.router, archive.router, dashboard.router):
        app.include_router(r)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.exception_handler(SanigridError)
    async def sanigrid_error(request: Request, exc: SanigridError) -> Response:
        code = status_for(exc)
        if code == 401 and _wants_html(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if _wants_html(request):
            return error_page(request, code, str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        msgs = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in errors]
        detail = "请求数据有误 (invalid request): " + "; ".join(msgs)
        if _wants_html(request):
            return error_page(request, 422, detail)
        return JSONResponse({"detail": detail,
                             "errors": [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths (404), wrong methods (405) …: a page for a browser, FastAPI's JSON otherwise."""
        if exc.status_code == 405:  # Allow: every method the path has, not only the first route's
            allow = ", ".join(allowed_methods(app, request.url.path))
            if allow:
                exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": allow})
        if _wants_html(request):
            return error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    app.openapi = lambda: honest_openapi(app)  # type: ignore[method-assign]
    return app


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path`` (templates such as ``/api/problems/{problem_id}``
    matched segment by segment)."""
    import re

    out: list[str] = []
    for template, ops in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            out += [m.upper() for m in ops if m.upper() not in out]
    return out


def honest_openapi(app: FastAPI) -> dict:
    """The OpenAPI document with the error responses the routes really give: every operation documents
    the JSON error body (``ErrorBody``) for 400, 401, 403, 404 (with a path parameter), 409 (writes), 422
    and, for the login, 429 (replacing FastAPI's default 422 schema, which is not what this app sends)."""
    from fastapi.openapi.utils import get_openapi

    from sanigrid.web._errors import ERROR_BODY_SCHEMA, ERROR_TEXT

    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ERROR_BODY_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            codes = ["400", "403", "404", "422"]  # 404 also for a layer not yet imported or computed
            if path == "/api/auth/token":
                codes += ["401", "429"]
            else:
                codes.append("401")
            if method in ("post", "patch", "put", "delete"):
                codes += ["409", "413"]
            responses = op.setdefault("responses", {})
            for code in codes:
                entry = responses.setdefault(code, {})
                entry["description"] = entry.get("description") or ERROR_TEXT[code]
                if entry["description"] == "Validation Error":
                    entry["description"] = ERROR_TEXT[code]
                entry["content"] = ref
                if code == "401":
                    entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
                if code == "429":
                    entry["headers"] = {"Retry-After": {"schema": {"type": "string"},
                                                        "description": "seconds to wait"}}
    app.openapi_schema = spec
    return spec


def warm_caches(project: Project) -> None:
    """Build the map's caches (page layers, point indexes of big layers, the search index) so the first view
    and the first search are fast."""
    from sanigrid.layers.catalogue import CATALOGUE
    from sanigrid.web.features import point_index
    from sanigrid.web.mappage import build_map
    from sanigrid.web.search import search_index

    try:
        build_map(project)
        for info in project.store.info():
            s = CATALOGUE[info.kind]
            if s.big and s.geometry == ("Point",):
                point_index(project.store, s, project.settings.basemap.coords, settings=project.settings)
        search_index(project.store, project.settings.basemap.coords)
    except Exception:  # a cache that is not warm is only slower; the request path reports real errors
        log.exception("warming the map caches failed")


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory web.app:app_from_env``: the project named by ``SANIGRID_PROJECT``."""
    s = AppSettings()
    return create_app(s.project, settings=s)
