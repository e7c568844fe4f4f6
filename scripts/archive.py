"""`sanigrid archive`: scan the evidence archive, report its completeness (档案完整性.xlsx).

:func:`run_archive` scans the archive folder into the registry (:mod:`layers.archive`), checks every
sample point and department against the catalogue (:mod:`geo.archive`) and writes the workbook; the
workbook is written first and the registry committed after it, so a failed report leaves both as they
were. The command only prints. ``sanigrid sample`` reads the same registry: missing documents lower a
sample point's readiness.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load
from sanigrid.scripts.problems import _date

if TYPE_CHECKING:
    import pandas as pd

    from sanigrid.layers.archive import ScanResult
    from sanigrid.layers.project import Project

REPORT_FILE = "档案完整性.xlsx"


@dataclass
class ArchiveRun:
    """What :func:`run_archive` found and wrote."""

    as_of: datetime
    registry: pd.DataFrame
    scan: ScanResult | None
    completeness: pd.DataFrame
    summary: pd.DataFrame
    duplicates: pd.DataFrame
    near: pd.DataFrame
    path: Path | None


def archive_places(project: Project) -> pd.DataFrame | None:
    """The sample-point candidates the archive catalogue is checked against (:func:`geo.archive.places`), or
    ``None`` without any place layer; only the layers that supply a category the catalogue names are read."""
    from sanigrid.geo import archive as check

    st = project.store
    layers = {k: st.read(k) for k in check.place_kinds(project.settings) if st.has(k)}
    return check.places(layers, grids=st.read("grids") if st.has("grids") else None, settings=project.settings)


def run_archive(project: Project, *, as_of: datetime | None = None, scan: bool = True,
                xlsx: bool = True) -> ArchiveRun:
    """Scan (unless ``scan`` is false), check and report the evidence archive of ``project``.

    Without an archive folder nothing is scanned and every required document is missing. The report
    ``outputs/档案完整性.xlsx`` has the sheets 汇总 (per holder), 样本点 and 部门 (per document), 缺失与过期,
    重复雷同 (same SHA-256 in two holders' folders), 疑似雷同 (similar names or PDF text), 登记表 (the
    registry) and 档案目录 (the catalogue).
    """
    from sanigrid.geo import archive as check
    from sanigrid.layers import archive as reg
    from sanigrid.layers.cases import store_as_of
    from sanigrid.layers.workbook import StagedWorkbook

    st = project.store
    t = store_as_of(st, given=as_of, settings=project.settings)
    registry = reg.read_registry(st)
    folder = reg.archive_folder(project)
    result = None
    if scan and folder.is_dir():
        result = reg.scan(folder, registry, root=project.root, settings=project.settings.archive)
    files = result.registry if result is not None else registry if registry is not None else reg.empty_registry()
    found = check.check(files, archive_places(project), settings=project.settings, as_of=t)
    path = None
    report: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if xlsx:
        path = project.output_path(REPORT_FILE)
        scanned = (f"新增 {len(result.added)}, 更新 {len(result.changed)}, 移除 {len(result.removed)}"
                   if result else "未扫描")
        sheets = check.report_sheets(found, files, settings=project.settings, as_of=t,
                                     notes={"档案文件夹": str(folder), "本次扫描": scanned})
        report = StagedWorkbook(sheets, path, headers=check.HEADERS)
    with report:
        if result is not None and (result.added or result.changed or result.removed or registry is None):
            reg.write_registry(st, result.registry)
    return ArchiveRun(as_of=t, registry=files, scan=result, completeness=found.completeness, summary=found.summary,
                      duplicates=found.duplicates, near=found.near, path=path)


@app.command("archive")
def archive_command(
    project: ProjectOpt = DEFAULT_PROJECT,
    as_of: Annotated[str | None, typer.Option("--as-of", help="截至日期 date of the check (default: now)")] = None,
    scan: Annotated[bool, typer.Option("--scan/--no-scan", help="先扫描档案文件夹 scan the archive folder first")]
    = True,
) -> None:
    """档案完整性: 扫描档案文件夹, 按目录核对样本点和部门的资料, 查重复雷同 → 档案完整性.xlsx."""
    from sanigrid.geo.archive import EXPIRED, MISSING, PRESENT

    with console.status("档案 archive …"):
        run = run_archive(load(project), as_of=_date(as_of, "as-of"), scan=scan)
    if run.scan is not None:
        s = run.scan
        console.print(f"扫描: 新增 {len(s.added)}, 更新 {len(s.changed)}, 移除 {len(s.removed)}, "
                      f"共 {len(run.registry)} 个文件")
        if s.unfiled:
            console.print(f"[yellow]{len(s.unfiled)} 个文件直接放在档案文件夹下, 没有所属单位/地点的子文件夹[/]")
    counts = run.completeness["status"].value_counts()
    table = Table(title=f"档案完整性 截至 {run.as_of:%Y-%m-%d}")
    for c in ("应有", "齐全", "过期", "缺失", "重复雷同组", "疑似雷同"):
        table.add_column(c, justify="right")
    across = run.duplicates.loc[run.duplicates["across"].astype(bool), "group"].nunique() if len(run.duplicates) else 0
    table.add_row(str(len(run.completeness)), *(str(int(counts.get(k, 0))) for k in (PRESENT, EXPIRED, MISSING)),
                  str(across), str(len(run.near)))
    console.print(table)
    if run.path:
        console.print(f"档案完整性 → {run.path}")
