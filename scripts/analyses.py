"""Run every analysis on a project, in order, as the demo (and `sanigrid analyse`) does.

Each step is a plain ``run_*`` function of its command module; this module only sequences them,
times them and reports a line per step, so the demo map shows every analysis layer.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load

if TYPE_CHECKING:
    from sanigrid.layers.project import Project


def _steps(project: Project, *, prints: bool = False) -> list[tuple[str, Callable[[], Any]]]:
    from sanigrid.scripts import archive, coverage, problems, sampling

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("问题状态与责任清单 problems", lambda: problems.run_problems(project)),
    ]
    kinds = list(project.settings.facilities)  # the presets are the one list of facility kinds
    for kind in kinds:
        steps.append((f"覆盖分析 coverage {kind}", functools.partial(coverage.run_coverage, project, kind)))
    # the facility projects: their list, and coverage when they are done for every kind that has some
    steps.append(("设施建设项目 projects", lambda: coverage.run_projects(project)))
    for kind in kinds:
        if _has_projects(project, kind):
            steps.append((f"建设项目前后对比 coverage {kind} --with-planned",
                          functools.partial(coverage.run_planned_coverage, project, kind)))
    # new sites for toilets (the campaign's first question), else for the first preset
    site_kind = "toilets" if "toilets" in kinds else next(iter(kinds), None)
    if site_kind is not None:
        title = f"{project.settings.facility_title(site_kind)}选址 siting {site_kind}"
        steps.append((title, functools.partial(coverage.run_siting, project, site_kind, new=5)))
    steps += [
        ("热点与反弹 hotspots", lambda: problems.run_hotspots(project)),
        ("网格排名 rank", lambda: problems.run_rank(project)),
        ("职能部门排名 rank --by unit", lambda: problems.run_unit_rank(project)),
        ("档案完整性 archive", lambda: archive.run_archive(project)),  # before sample: readiness reads it
        ("样本点 sample", lambda: sampling.run_sample(project)),
        ("模拟评估 mock-check", lambda: sampling.run_mock_check(project)),
    ]
    if prints:  # printed maps: drawn on request (`sample --maps`, the web's prints), and by the demo
        steps.append(("样本点图 sample maps (A4 PNG)", lambda: sampling.run_sample_maps(project)))
    return steps


def _has_projects(project: Project, kind: str) -> bool:
    from sanigrid.layers.projects import is_pending

    st = project.store
    return st.has(kind) and bool(is_pending(st.read(kind)).any())


def run_demo_analyses(project: Project, *, only: str | None = None, prints: bool = False) -> list[tuple[str, float]]:
    """Run all analyses on ``project``, writing their layers and exports; returns (step, seconds).

    ``prints`` adds the printable maps (one A4 PNG per sample category, ``outputs/样本点图_*.png``) as a
    last step; without it no map is drawn (every table and layer is written either way).

    The steps share one :class:`~sanigrid.scripts._memo.ReadOnce` store: each layer is read once per run
    (again only after a step wrote it), and results several steps derive from the same layers (the
    street network, the problems with deadlines filled in, the sample candidates) are computed once.
    """
    from sanigrid.scripts._memo import read_once

    keep = getattr(project.store, "kept_connections", None)  # one connection for all the steps' reads
    with keep() if keep is not None else contextlib.nullcontext():
        project = read_once(project)
        done = []
        for title, step in _steps(project, prints=prints):
            if only and only not in title:
                continue
            t0 = time.perf_counter()
            with console.status(title):
                step()
            dt = time.perf_counter() - t0
            console.print(f"  ✓ {title}  [dim]{dt:.2f} s[/]")
            done.append((title, dt))
    return done


@app.command()
def analyse(
    project: ProjectOpt = DEFAULT_PROJECT,
    only: Annotated[str | None, typer.Option(help="run only steps whose name contains this")] = None,
    prints: Annotated[bool, typer.Option(help="also draw the printable maps (A4 PNG per sample category)")] = False,
) -> None:
    """Run every analysis (coverage, siting, problems, hotspots, ranking, archive, sampling) on the project.

    Each layer is read once and shared results (the street network, the problems, the sample
    candidates) are computed once; what is written equals running the commands one by one. Maps are
    drawn only with ``--prints`` (the demo draws them)."""
    run_demo_analyses(load(project), only=only, prints=prints)
