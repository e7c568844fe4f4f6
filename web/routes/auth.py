"""Login: a password gives a bearer token (and, for browsers, a cookie); ``/api/auth/me`` tells who you are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from sanigrid.web._errors import TooManyAttempts, Unauthorized
from sanigrid.web.auth import ROLE_ZH, login
from sanigrid.web.deps import COOKIE, CurrentUser, ProjectDep, SessionsDep, ThrottleDep, oauth2_scheme, request_token
from sanigrid.web.templating import render

router = APIRouter(tags=["auth 登录"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    grid_code: str | None = None


class Me(BaseModel):
    name: str
    role: str
    role_zh: str
    grid_code: str | None = None


@router.post("/api/auth/token", response_model=Token, summary="登录, 换取令牌 (password → bearer token)")
def login_token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], project: ProjectDep,
                sessions: SessionsDep, throttle: ThrottleDep) -> Token:
    user, token = login(project, sessions, throttle, form.username, form.password, address=_address(request))
    return Token(access_token=token, role=user.role, grid_code=user.grid_code)


def _address(request: Request) -> str:
    """The client's address (the direct peer: a proxy in front should pass its own limits)."""
    return request.client.host if request.client else ""


@router.get("/api/auth/me", response_model=Me, summary="当前账号 (who am I)")
def me(user: CurrentUser) -> Me:
    return Me(name=user.name, role=user.role, role_zh=ROLE_ZH[user.role], grid_code=user.grid_code)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def login_page(lang: str, message: str = "", next_url: str = "/", name: str = "") -> str:
    return render("login.html", lang=lang, message=message, next_url=next_url, name=name)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(project: ProjectDep, next: str = "/") -> str:
    return login_page(project.settings.project.language, next_url=_safe_next(next))


@router.post("/login", include_in_schema=False)
def login_submit(request: Request, project: ProjectDep, sessions: SessionsDep, throttle: ThrottleDep,
                 username: Annotated[str, Form()], password: Annotated[str, Form()],
                 next: Annotated[str, Form()] = "/"):
    try:
        _, token = login(project, sessions, throttle, username, password, address=_address(request))
    except TooManyAttempts as e:
        page = login_page(project.settings.project.language, str(e), _safe_next(next), username)
        return HTMLResponse(page, status_code=429, headers={"Retry-After": str(e.retry_after)})
    except Unauthorized as e:
        page = login_page(project.settings.project.language, str(e), _safe_next(next), username)
        return HTMLResponse(page, status_code=401)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                    max_age=int(project.settings.web.session_hours * 3600))
    return resp


@router.get("/logout", include_in_schema=False)
def logout(request: Request, sessions: SessionsDep, bearer: Annotated[str | None, Depends(oauth2_scheme)]):
    token = request_token(request, bearer)
    if token:
        sessions.revoke(token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp
