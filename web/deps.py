"""Request dependencies: the project, the current account, role checks (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sanigrid.layers.project import Project
from sanigrid.web._errors import Forbidden, Unauthorized
from sanigrid.web.auth import LoginThrottle, Sessions, User, session_user, user_for_api_token

COOKIE = "sanigrid_token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_project(request: Request) -> Project:
    return request.app.state.project


def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions


def get_throttle(request: Request) -> LoginThrottle:
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
    # the account as it is now: a changed role, grid or password ends a login at once
    user = session_user(project, sessions, token) or user_for_api_token(project, token)
    if user is None:
        raise Unauthorized("令牌无效或已过期, 请重新登录 (invalid or expired token)")
    request.state.user = user  # for the error pages (a grid head's 403 links to their own grid)
    return user


def writer(user: Annotated[User, Depends(current_user)]) -> User:
    """An account that may write something (office or grid head); 403 for viewers."""
    if not user.can_write:
        raise Forbidden(f"账号「{user.name}」为只读账号 (viewer), 不能修改数据 (read-only account)")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Writer = Annotated[User, Depends(writer)]
