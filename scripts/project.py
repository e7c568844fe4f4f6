"""`sanigrid` commands for the project itself: init, layers (import and validate live here too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from layers.project import init_project
from layers.settings import Settings
from scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load


@app.command()
def init(
    project: ProjectOpt = DEFAULT_PROJECT,
    name: Annotated[str, typer.Option(help="county town name, e.g. 贵溪市")] = "示例县城",
    county_code: Annotated[str, typer.Option(help="6-digit county code")] = "000000",
    crs: Annotated[str | None, typer.Option(help="projected CRS, e.g. EPSG:4548; default: from the data")] = None,
    overwrite: Annotated[bool, typer.Option(help="start again if a project is already there")] = False,
) -> None:
    """Create a project: an empty GeoPackage store and a settings file with the defaults."""
    settings = Settings()
    settings.project.name = name
    settings.project.county_code = county_code
    settings.project.crs = crs
    p = init_project(project, settings=settings, overwrite=overwrite)
    console.print(f"已创建项目 created project in [bold]{p.root}[/]: {p.settings_path.name} + sanigrid.gpkg")


@app.command("layers")
def layers_cmd(project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """List the layers in the store: feature count, CRS, extent and when each last changed."""
    p = load(project)
    table = Table(title=f"{p.settings.project.name} · {Path(p.root).resolve().name}")
    for col in ("图层 layer", "要素 features", "CRS", "范围 extent (m)", "更新 updated", "备注"):
        table.add_column(col)
    for li in p.store.info():
        ext = "" if li.bounds is None else "{:.0f},{:.0f} – {:.0f},{:.0f}".format(*li.bounds)
        table.add_row(f"{li.kind} {li.title}", str(li.count), li.crs or "", ext, li.updated_at or "",
                      "合成数据 synthetic" if li.synthetic else "")
    console.print(table)
