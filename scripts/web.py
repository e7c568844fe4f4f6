"""`sanigrid serve` and `sanigrid user add|list|remove`: the web map and its accounts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanigrid.layers.cases import ROLE_ZH, ROLES
from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load

if TYPE_CHECKING:
    from sanigrid.layers.project import Project

user_app = typer.Typer(help=f"管理网页账号 / manage web accounts ({' | '.join(ROLES)}).", no_args_is_help=True)
app.add_typer(user_app, name="user")


def serve(project_root: str | Path, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the project's map and API with uvicorn until interrupted (blocking)."""
    import uvicorn

    from sanigrid.layers.project import open_project
    from sanigrid.web.app import create_app

    project = open_project(project_root)
    if not _accounts(project):
        console.print("[yellow]本项目还没有网页账号, 无法登录: 运行 "
                      "`sanigrid user add NAME --role office --password …` "
                      "(no web accounts yet)[/]")
    console.print(f"地图 map: http://{host}:{port}/   接口文档 API docs: http://{host}:{port}/docs")
    uvicorn.run(create_app(project), host=host, port=port, log_level="info")


def _grid_codes(project: Project) -> set[str]:
    if not project.store.has("grids"):
        return set()
    return {str(c) for c in project.store.read("grids", columns=["code"])["code"]}


def demo_accounts(project: Project) -> list[tuple[str, str, str]]:
    """One demo login per role (replacing earlier demo accounts): ``[(name, role, password)]``.

    The grid head gets the first grid (by code). Passwords are random; print them once.
    """
    from sanigrid.web.auth import add_user

    codes = sorted(_grid_codes(project))
    out = []
    for name, role, grid in (("demo-office", "office", None), ("demo-grid", "grid_head", codes[0] if codes else None),
                             ("demo-inspector", "inspector", None), ("demo-viewer", "viewer", None)):
        if role == "grid_head" and grid is None:
            continue
        password = secrets.token_urlsafe(9)
        add_user(project, name, role=role, grid_code=grid, password=password, grids=set(codes), replace=True)
        out.append((name, role if grid is None else f"{role} {grid}", password))
    return out


@app.command("serve")
def serve_command(
    project: ProjectOpt = DEFAULT_PROJECT,
    host: Annotated[str, typer.Option(help="address to listen on (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """启动网页地图与接口 / serve the web map and API (OpenAPI docs at /docs)."""
    serve(load(project).root, host=host, port=port)


@app.command("print")
def print_command(
    theme: Annotated[str, typer.Argument(help="ranking 排名 | coverage 覆盖 | problems 冷热点 | alleys 背街小巷")],
    project: ProjectOpt = DEFAULT_PROJECT,
    paper: Annotated[str, typer.Option(help="A3 or A4 (landscape)")] = "A3",
    fmt: Annotated[str, typer.Option("--format", help="pdf or png")] = "pdf",
    kind: Annotated[str, typer.Option(help="facility kind of the coverage theme")] = "toilets",
    out: Annotated[Path | None, typer.Option(help="file to write (default: outputs/全县_THEME_PAPER.FORMAT)")] = None,
) -> None:
    """打印全县专题地图 / a county-wide printable map (title, legend, north arrow, scale bar, date, attribution)."""
    from sanigrid.web.printmap import county_print

    if paper not in ("A3", "A4") or fmt not in ("pdf", "png"):
        raise typer.BadParameter("paper is A3 or A4, format is pdf or png")
    p = load(project)
    data = county_print(p, theme=theme, paper=paper, fmt=fmt, facility_kind=kind)
    target = out or p.output_path(f"全县_{theme}_{paper}.{fmt}")
    target.write_bytes(data)
    console.print(f"打印地图 printable map → {target}")


def _accounts(project: Project) -> list:
    from sanigrid.web.auth import list_users

    return list_users(project)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="账号名 account name")],
    role: Annotated[str, typer.Option("--role", help=" | ".join(f"{r} ({ROLE_ZH[r]})" for r in ROLES))],
    grid: Annotated[str | None, typer.Option("--grid", help="网格编码 (grid heads)")] = None,
    password: Annotated[str | None, typer.Option("--password", help="登录密码 (omit: one is made)")] = None,
    api_only: Annotated[bool, typer.Option("--api-only", help="API token only, no password")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="替换同名账号 / replace an existing account")] = False,
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """新增账号, 打印其初始密码和 API 令牌 (只显示一次) / add an account; its password and API token print once."""
    from sanigrid.web.auth import add_user

    p = load(project)
    generated = password is None and not api_only
    if generated:
        password = secrets.token_urlsafe(9)
    token = add_user(p, name, role=role, grid_code=grid, password=None if api_only else password,
                     grids=_grid_codes(p), replace=replace)
    console.print(f"账号 [bold]{name}[/] ({role}{' ' + grid if grid else ''}) 已创建.")
    if generated:
        console.print(f"初始密码 password (只显示这一次, 请转告本人): [bold]{password}[/]", highlight=False)
    console.print(f"API 令牌 (只显示这一次): [bold]{token}[/]", highlight=False)


@user_app.command("list")
def user_list(project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """列出账号 / list accounts."""

    t = Table("账号 name", "角色 role", "网格 grid")
    for u in _accounts(load(project)):
        t.add_row(u.name, f"{u.role} ({ROLE_ZH[u.role]})", u.grid_code or "")
    console.print(t)


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument(help="账号名")], project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """删除账号 / remove an account."""
    from sanigrid.web.auth import remove_user

    p = load(project)
    remove_user(p, name)  # and its logins end, on a running server too
    console.print(f"账号 {name} 已删除.")
