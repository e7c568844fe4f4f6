"""The ``demo`` command: build the demo county, run every analysis, serve it.

:func:`build_demo` makes the project folder, writes every layer through the store in one
transaction (synthetic layers flagged as such, with the seed and the ODbL source in their
parameters) and returns the :class:`~sanigrid.layers.project.Project`. The command then prints a
summary, runs every analysis (:func:`sanigrid.scripts.analyses.run_demo_analyses`) and, with
``--serve``, the web map. The generator is imported when the demo is built, not when the command
line starts.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanigrid.layers._errors import SettingsError
from sanigrid.scripts._app import app, console
from sanigrid.scripts.analyses import run_demo_analyses
from sanigrid.scripts.web import demo_accounts
from sanigrid.scripts.web import serve as web_serve

if TYPE_CHECKING:  # the generator and the analyses are imported when the demo is built
    from sanigrid.layers.project import Project
    from sanigrid.scripts.demo.county import DemoData

DEMO_FOLDER = Path("demo")
_OSM_KINDS = ("streets",)  # derived from OpenStreetMap alone; alleys mix OSM and synthetic lanes


def build_demo(root: str | Path, *, seed: int = 2026, n_problems: int = 5000, overwrite: bool = True) -> Project:
    """Create the demo project in ``root`` and return it.

    Parameters
    ----------
    root
        Project folder (created; an existing project there is replaced when ``overwrite``).
    seed
        Random seed: the same seed gives the same layers.
    n_problems
        Number of problem reports over the six months ending 2026-11-15 (≥ 300).
    overwrite
        Replace a demo project already in ``root`` (otherwise that raises ``SettingsError``).
        A folder holding any other project is never replaced: that raises ``SettingsError``.

    Returns
    -------
    Project
        The project, its store holding every input layer in EPSG:4548 (metres) and the
        ``problem_history`` table. A copy of the OSM extract sits beside the store, and the evidence
        archive folder ``档案/`` (:mod:`.archive`) beside it.
    """
    from sanigrid.geo.sampling import LAYER_CATEGORY
    from sanigrid.layers.project import init_project
    from sanigrid.layers.settings import SETTINGS_NAME, load_settings
    from sanigrid.scripts.demo.archive import archive_places, write_demo_archive
    from sanigrid.scripts.demo.county import make_demo_layers
    from sanigrid.scripts.demo.facts import COUNTY_NAME, OSM_PATH, OSM_SOURCE
    from sanigrid.scripts.demo.town import demo_settings

    root = Path(root)
    spath = root / SETTINGS_NAME
    if overwrite and spath.exists() and load_settings(spath).project.name != COUNTY_NAME:
        raise SettingsError(
            f"{root.resolve()} holds the project '{load_settings(spath).project.name}', not the demo; "
            "the demo would replace it. Choose another folder with --project"
        )
    settings = demo_settings()
    project = init_project(root, settings=settings, overwrite=overwrite)
    data = make_demo_layers(settings, seed=seed, n_problems=n_problems)
    write_demo_data(project, data, seed=seed)
    # the evidence archive: a folder of files that `sanigrid archive` scans
    shutil.rmtree(root / settings.archive.folder, ignore_errors=True)  # the demo's own folder, made anew
    write_demo_archive(root / settings.archive.folder, archive_places(data.layers, LAYER_CATEGORY.items()),
                       settings, seed=seed)
    # the extract travels with the project, with its licence
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / OSM_PATH.name).write_bytes(OSM_PATH.read_bytes())
    (root / "data" / "README.md").write_text(
        f"# {OSM_PATH.name}\n\n{OSM_SOURCE}. https://www.openstreetmap.org/copyright\n"
        "Streets of the demo come from it; every other layer is synthetic (see the store's metadata).\n",
        encoding="utf-8")
    return project


def write_demo_data(project: Project, data: DemoData, *, seed: int) -> None:
    """Write the demo's layers and history table into ``project``'s store in one transaction, synthetic
    layers flagged as such, with the seed and the ODbL source in their parameters (the demo and the
    synthetic province, :mod:`sanigrid.scripts.demo.province`, write alike)."""
    from sanigrid.layers.cases import HISTORY_TABLE
    from sanigrid.scripts.demo.facts import ATTRIBUTION, OSM_SOURCE

    settings = project.settings
    base = {"seed": seed, "source": OSM_SOURCE, "attribution": ATTRIBUTION, "generator": "sanigrid.scripts.demo"}
    with project.store.transaction() as tx:
        for kind, frame in data.layers.items():
            synthetic = kind not in _OSM_KINDS
            params = dict(base, synthetic=synthetic)
            if kind == "streets":
                params["note"] = "OSM highways clipped to the extract; alley junctions added as vertices"
            if kind == "problems":
                params.update({k: v for k, v in data.params.items() if k in ("n_problems", "problems", "as_of")})
            if kind == "alleys":
                params["note"] = "OSM alleys as `sanigrid import alleys` reads them, synthetic lanes (column source)"
            if kind in settings.facilities and "gaps" in data.params:
                params["gaps"] = data.params["gaps"]
            tx.write(kind, frame, params=params, synthetic=synthetic)
        tx.write_table(HISTORY_TABLE, data.tables["problem_history"])


def summary_table(project: Project) -> Table:
    """Layer, features and origin of every layer in the project's store."""
    from sanigrid.layers.cases import HISTORY_TABLE

    table = Table(title=f"{project.settings.project.name} · {project.root}")
    table.add_column("图层 layer")
    table.add_column("要素 features", justify="right")
    table.add_column("来源 origin")
    for li in project.store.info():
        table.add_row(f"{li.kind} {li.title}", str(li.count), "合成 synthetic" if li.synthetic else "OpenStreetMap")
    hist = project.store.read_table(HISTORY_TABLE)
    table.add_row(f"{HISTORY_TABLE} 办理记录", str(len(hist)), "合成 synthetic")
    return table


@app.command()
def demo(
    project: Annotated[Path, typer.Option("--project", "-p", help="folder of the demo project")] = DEMO_FOLDER,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same county)")] = 2026,
    problems: Annotated[int, typer.Option("--problems", help="number of problem reports (≥ 300)")] = 5000,
    analyses: Annotated[bool, typer.Option(help="run every analysis on the demo afterwards")] = True,
    serve: Annotated[bool, typer.Option(help="serve the web map when done")] = False,
    host: Annotated[str | None, typer.Option(help="web host (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="web port (default: settings)")] = None,
) -> None:
    """Build the demo county on the real streets of Guixi (贵溪) and show what it holds."""
    t0 = time.perf_counter()
    p = build_demo(project, seed=seed, n_problems=problems, overwrite=True)
    console.print(summary_table(p))
    console.print(f"[dim]{p.settings.project.attribution}[/]")
    console.print(f"演示项目已生成 demo project built in {time.perf_counter() - t0:.1f} s: [bold]{p.root}[/]")
    if analyses:
        run_demo_analyses(p, prints=True)  # the demo's outputs/ hold the printable maps too
    accounts = demo_accounts(p)
    table = Table(title="演示账号 demo logins (passwords are new on every build)")
    for col in ("账号 user", "角色 role", "密码 password"):
        table.add_column(col)
    for name, role, password in accounts:
        table.add_row(name, role, password)
    console.print(table)
    if serve:
        web_serve(p.root, host=host or p.settings.web.host, port=port or p.settings.web.port)
