"""Request dependencies: the project, the current account, role checks (``Annotated`` aliases).

The dependencies that only look at the request are ``async``: FastAPI runs a plain ``def`` dependency in a
worker thread, a hop of about a millisecond per dependency and request. :func:`current_user` reads the
account and login tables (SQLite, which may wait on a lock), so it stays in a thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sanigrid.layers.project import Project
from sanigrid.web._errors import Forbidden, Unauthorized
from sanigrid.web.auth import LoginThrottle, Sessions, User, session_user, user_for_api_token

COOKIE = "sanigrid_token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def get_project(request: Request) -> Project:
    return request.app.state.project


async def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions


async def get_throttle(request: Request) -> LoginThrottle:
    return request.app.state.login_throttle


ProjectDep = Annotated[Project, Depends(get_project)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]


def request_token(request: Request, bearer: str | None) -> str | None:
    """The bearer token of the Authorization header, else the login cookie of a browser."""
    return bearer or request.cookies.get(COOKIE)


def current_user(request: Request, project: ProjectDep, sessions: SessionsDep,
                 bearer: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The account behind the request's token (a login token or an API token); 401 without one."""
    token = request_token(request, bearer)
    if not token:
        raise Unauthorized("需要登录: 请先登录, 或在请求头中附上 Authorization: Bearer <token> (not logged in)")
    if not bearer and request.method not in SAFE_METHODS:
        check_same_origin(request)  # a browser's cookie rides along on requests other sites make
    # the account as it is now: a changed role, grid or password ends a login at once
    user = session_user(project, sessions, token) or user_for_api_token(project, token)
    if user is None:
        raise Unauthorized("令牌无效或已过期, 请重新登录 (invalid or expired token)")
    request.state.user = user  # for the error pages (a grid head's 403 links to their own grid)
    return user


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_same_origin(request: Request) -> None:
    """:class:`Forbidden` for a cookie-authenticated write that a browser says came from another origin.

    ``Sec-Fetch-Site`` (sent by current browsers) must be ``same-origin`` or ``none``; else ``Origin``, when
    sent, must be this server's own scheme, host and port (a page on another port of the same host is
    another origin, though the same site, so SameSite cookies do not stop it). Requests with a bearer
    token are not checked: a token is never sent by a browser on its own.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"拒绝跨站请求 (Sec-Fetch-Site: {site}); 请在本系统页面内操作 "
                        "(a cookie-authenticated write from another site)")
    if origin is not None and origin.rstrip("/") != own:
        raise Forbidden(f"拒绝来自 {origin} 的请求 (origin is not {own}); 请在本系统页面内操作 "
                        "(a cookie-authenticated write from another origin)")


async def writer(user: Annotated[User, Depends(current_user)]) -> User:
    """An account that may write something (office or grid head); 403 for viewers."""
    if not user.can_write:
        raise Forbidden(f"账号「{user.name}」为只读账号 (viewer), 不能修改数据 (read-only account)")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Writer = Annotated[User, Depends(writer)]
