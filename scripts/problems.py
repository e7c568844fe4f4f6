"""`sanigrid problems`, `sanigrid hotspots` and `sanigrid rank`: the weekly problem report.

The plain functions :func:`run_problems`, :func:`run_hotspots` and :func:`run_rank` read the layers
from the project's store, call ``geo.problems`` / ``geo.hotspots`` / ``geo.rebound`` /
``geo.scorecard``, write the result layers in one store transaction and an .xlsx (Chinese headers)
to ``outputs/``; the typer commands only parse and print.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sanigrid.geo._errors import AnalysisError
from sanigrid.layers import cases
from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load

if TYPE_CHECKING:  # the analyses and their libraries are imported by the functions that run them
    import geopandas as gpd
    import pandas as pd

    from sanigrid.geo import hotspots as hotspot_analysis  # `hotspots` is this module's command
    from sanigrid.geo import scorecard
    from sanigrid.layers.project import Project

_HEADERS = {
    "status": "状态", "count": "数量", "item": "项目", "value": "数值", "pile": "堆点", "categories": "主要类别",
    "first_report": "最早上报", "last_report": "最近上报", "closed": "结案数", "rebounded": "反弹数",
    "rate": "反弹率", "place": "地点", "rebounds": "反弹次数", "problems": "涉及问题", "category": "问题类别",
    "grid_code": "网格编码", "trend_z": "趋势Z得分(MK)", "trend_p": "趋势P值", "cell": "格网号",
}


@dataclass
class ProblemsReport:
    """What `sanigrid problems` found: counts by status, overdue cases, the 责任清单 sheets."""

    as_of: datetime
    status: pd.DataFrame
    overdue: gpd.GeoDataFrame
    sheets: dict[str, pd.DataFrame]
    path: Path | None = None
    filled: dict[str, int] = field(default_factory=dict)
    inspections: list[str] = field(default_factory=list)  # one progress line per inspection report


def load_problems(project: Project) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, int]]:
    """Problems and grids from the store; missing deadlines, grids and units filled in memory
    (the stored layer is not changed). Returns ``(problems, grids, filled counts)``; computed once per
    `sanigrid analyse` run (:func:`scripts._memo.shared`)."""
    from sanigrid.scripts._memo import shared

    return shared(project, "load_problems", lambda: _load_problems(project))


def _load_problems(project: Project) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, int]]:
    import geopandas as gpd

    from sanigrid.geo.problems import assign

    st = project.store
    problems = st.read("problems")
    if not len(problems):
        raise AnalysisError(f"{st.location}: layer 'problems' is empty; import problem reports first "
                            "(or run `sanigrid demo`)")
    grids = st.read("grids") if st.has("grids") else gpd.GeoDataFrame(geometry=[], crs=problems.crs)
    p = problems.copy()
    filled = {}
    if "problem_id" not in p or p["problem_id"].isna().any():
        raise AnalysisError(f"{st.location}: layer 'problems' has rows without problem_id (编号); number them")
    need = int((p["deadline"].isna() & p["reported_at"].notna()).sum())
    if need:
        p["deadline"] = cases.fill_deadlines(p, settings=project.settings)
        filled["deadline"] = need
    if len(grids) and (p["grid_code"].isna().any() or p["unit"].isna().any()):
        routed = assign(p, grids, settings=project.settings)
        for col in ("grid_code", "unit"):
            miss = p[col].isna()
            p.loc[miss, col] = routed.loc[miss, col]
            filled[col] = int(miss.sum())
    return p, grids, filled


def report_date(project: Project, as_of: datetime | None = None) -> datetime:
    """The "as of" instant: the one given, else the one rule of :func:`layers.cases.as_of`."""
    return cases.store_as_of(project.store, given=as_of, settings=project.settings)


def run_problems(project: Project, *, as_of: datetime | None = None, xlsx: bool = True) -> ProblemsReport:
    """Status summary, overdue cases and the 责任清单 (.xlsx in ``outputs/`` when ``xlsx``)."""
    import pandas as pd

    from sanigrid.geo.problems import PROGRESS_HEADERS, RESPONSIBILITY_HEADERS, inspection_progress, responsibility_list
    from sanigrid.layers.export import zh_headers
    from sanigrid.layers.workbook import write_xlsx

    p, grids, filled = load_problems(project)
    t = report_date(project, as_of)
    reported = pd.to_datetime(p["reported_at"]) <= pd.Timestamp(t)
    status = p.loc[reported, "status"].value_counts().reindex(list(cases.STATUSES), fill_value=0)
    open_now = cases.is_open(p, as_of=t)
    od = cases.overdue(p, as_of=t)
    overdue = od["overdue"]
    status_tab = pd.DataFrame({"status": status.index, "count": status.to_numpy()})
    extra = pd.DataFrame({"status": [f"未结案 (截至 {pd.Timestamp(t):%Y-%m-%d %H:%M})", "其中逾期"],
                          "count": [int(open_now.sum()), int(overdue.sum())]})
    status_tab = pd.concat([status_tab, extra], ignore_index=True)
    late = p[overdue.to_numpy()].copy()
    late["days_overdue"] = od.loc[overdue, "days_overdue"]
    late = late.sort_values("days_overdue", ascending=False)
    sheets = responsibility_list(p, as_of=t, grids=grids if len(grids) else None)
    prog = inspection_progress(p, as_of=t, settings=project.settings)
    path = None
    if xlsx:
        path = project.output_path(f"责任清单_{pd.Timestamp(t):%Y%m%d}.xlsx")
        out = {"状态汇总": status_tab, **({"检查批次进度": prog} if len(prog) else {}), **sheets}
        write_xlsx(out, path, headers={**zh_headers("problems"), **RESPONSIBILITY_HEADERS, **_HEADERS,
                                       **PROGRESS_HEADERS})
    return ProblemsReport(as_of=t, status=status_tab, overdue=late, sheets=sheets, path=path, filled=filled,
                          inspections=list(prog["line"]))


@dataclass
class HotspotRun:
    """What `sanigrid hotspots` wrote: the hotspot result, the rebound result and the .xlsx."""

    hotspots: hotspot_analysis.HotspotResult
    rebounds: Any
    path: Path | None


def run_hotspots(project: Project, *, since: datetime | None = None, categories: list[str] | None = None,
                 as_of: datetime | None = None, xlsx: bool = True) -> HotspotRun:
    """Piles, density clusters, Gi* hot/cold cells with their weekly trend, and rebounds.

    Writes layers ``hotspot_clusters``, ``gi_cells`` and ``rebounds`` (one transaction) and
    ``outputs/热点分析_<date>.xlsx``.
    """
    import geopandas as gpd
    import pandas as pd

    from sanigrid.geo import hotspots as hotspot_analysis  # `hotspots` is this module's command
    from sanigrid.geo.rebound import rebounds
    from sanigrid.layers.export import params_table, zh_headers
    from sanigrid.layers.workbook import StagedWorkbook

    s = project.settings
    st = project.store
    p, grids, _ = load_problems(project)
    t = report_date(project, as_of)
    lines = None
    if s.hotspots.per_km_street:
        parts = [st.read(k) for k in ("streets", "alleys") if st.has(k)]
        parts = [f for f in parts if len(f)]
        lines = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs) if parts else None
    res = hotspot_analysis.analyse(p, settings=s, grids=grids if len(grids) else None, as_of=t, since=since,
                                   categories=categories, streets=lines)
    sel = p
    if categories:
        sel = sel[sel["category"].isin(categories)]
    rb = rebounds(sel, radius_m=s.rebound.radius_m, window_days=s.rebound.window_days, as_of=t, since=since,
                  pile_min_count=s.piles.min_count, pile_tolerance_m=s.piles.tolerance_m)
    params = {**res.params, "as_of": str(pd.Timestamp(t)), "since": str(since) if since else None,
              "categories": categories or "all"}
    rparams = {"radius_m": s.rebound.radius_m, "window_days": s.rebound.window_days, "as_of": str(pd.Timestamp(t)),
               "since": str(since) if since else None, "piles_left_out": s.piles.min_count}
    path = None
    report: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if xlsx:
        path = project.output_path(f"热点分析_{pd.Timestamp(t):%Y%m%d}.xlsx")
        sig = res.cells[(res.cells["label"] != hotspot_analysis.NOT_SIGNIFICANT) | (res.cells["trend"] != "")]
        info = params_table(params)
        report = StagedWorkbook({
            "说明": info, "聚集区": res.clusters, "显著冷热点": sig, "重复坐标堆点": res.piles,
            "反弹": rb.pairs, "反弹率_网格": rb.by_grid, "反弹率_类别": rb.by_category, "多次反弹地点": rb.places,
        }, path, headers={**zh_headers("hotspot_clusters"), **zh_headers("gi_cells"), **zh_headers("rebounds"),
                          **_HEADERS})
    # the report is complete before the store commits, and published after it: a failed report
    # leaves the store as it was
    with report, project.store.transaction() as tx:
        tx.write("hotspot_clusters", res.clusters, params=params)
        tx.write("gi_cells", res.cells, params=params)
        tx.write("rebounds", rb.pairs, params=rparams)
    return HotspotRun(hotspots=res, rebounds=rb, path=path)


def _rank_note(res: scorecard.ScorecardResult | scorecard.UnitRanking, basis: str, method: str) -> pd.DataFrame:
    import pandas as pd

    start, end = res.period
    return pd.DataFrame({"item": ["统计期", "上期", "基数", "收缩方法", "先验强度", "区间", "权重"],
                         "value": [f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d %H:%M}",
                                   f"{res.previous[0]:%Y-%m-%d} 至 {res.previous[1]:%Y-%m-%d}", basis, method,
                                   str(res.params["prior_strength"]), "90%",
                                   "、".join(f"{k}={v}" for k, v in res.params["weights"].items())]})


def _rank_path(project: Project, title: str, res: scorecard.ScorecardResult | scorecard.UnitRanking) -> Path:
    import pandas as pd

    start, end = res.period
    return project.output_path(f"{title}_{start:%Y%m%d}-{(end - pd.Timedelta(seconds=1)):%Y%m%d}.xlsx")


def run_unit_rank(project: Project, *, period: str = "month", as_of: datetime | None = None,
                  xlsx: bool = True) -> tuple[scorecard.UnitRanking, Path | None]:
    """The department ranking (职能部门排名) for the period ending at ``as_of``: the store's table
    ``unit_ranking`` and ``outputs/职能部门排名通报_<period>.xlsx``."""
    from sanigrid.geo import scorecard
    from sanigrid.layers.workbook import StagedWorkbook

    p, _, _ = load_problems(project)
    if p["unit"].isna().all():
        raise AnalysisError(f"{project.store.location}: no problem has a responsible unit (责任单位); import the "
                            "units, or the grids with their lead units, before ranking the departments")
    res = scorecard.unit_scorecard(p, settings=project.settings, as_of=report_date(project, as_of), period=period)
    path = None
    report: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if xlsx:
        path = _rank_path(project, "职能部门排名通报", res)
        note = _rank_note(res, "各单位交办的问题", "经验贝叶斯: 各比率用贝塔-二项, 向全县合计收缩")
        report = StagedWorkbook({"职能部门排名通报": scorecard.unit_report_table(res.units), "说明": note}, path,
                                headers=_HEADERS)
    with report, project.store.transaction() as tx:
        scores = [c for c in res.units if c.startswith("s_")]
        tx.write_table(scorecard.UNIT_RANKING_TABLE, res.units.drop(columns=scores))
    return res, path


def run_rank(project: Project, *, period: str = "month", as_of: datetime | None = None,
             xlsx: bool = True) -> tuple[scorecard.ScorecardResult, Path | None]:
    """The grid ranking for the period ending at ``as_of``: layer ``scorecard`` and
    ``outputs/网格排名通报_<period start>.xlsx`` (rank, grid, lead unit, indicators, change)."""
    from sanigrid.geo import scorecard
    from sanigrid.layers.workbook import StagedWorkbook

    p, grids, _ = load_problems(project)
    if not len(grids):
        raise AnalysisError(f"{project.store.location}: layer 'grids' is empty; import the grids before ranking them")
    st = project.store
    t = report_date(project, as_of)

    def opt(kind: str) -> gpd.GeoDataFrame | None:
        f = st.read(kind) if st.has(kind) else None
        return f if f is not None and len(f) else None

    res = scorecard.scorecard(p, grids, settings=project.settings, as_of=t, period=period, streets=opt("streets"),
                              alleys=opt("alleys"), gaps=opt("coverage_gaps"), facades=opt("facades"),
                              components=opt("components"))
    zones = opt("zones")
    path = None
    report: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if xlsx:
        path = _rank_path(project, "网格排名通报", res)
        note = _rank_note(res, str(res.params["exposure"]),
                          "经验贝叶斯: 比率用贝塔-二项, 每公里问题数用伽马-泊松, 向全县均值收缩")
        sheets = {"排名通报": scorecard.report_table(res), "说明": note}
        if zones is not None:
            sheets["城中村与城乡结合部"] = scorecard.zone_table(zones, opt("facades"), opt("components"))
        report = StagedWorkbook(sheets, path, headers=_HEADERS)
    with report, st.transaction() as tx:
        tx.write("scorecard", res.grids, params={k: str(v) for k, v in res.params.items()})
    return res, path


@dataclass
class InspectionImport:
    """What `sanigrid import-inspection` did: the import report and the batch's progress line."""

    report: Any
    progress: str | None


def run_import_inspection(project: Project, path: str | Path, *, name: str, date: str, source: str = "暗访",
                          coords: str = "wgs84", mapping: dict[str, str] | None = None, layer: str | None = None,
                          strict: bool = False, fix: bool = False,
                          values: dict[str, dict[str, str]] | None = None) -> InspectionImport:
    """Import an inspection report (暗访/督查) as one batch of problems: every row gets ``batch`` =
    ``name``, ``batch_date`` = ``date`` and ``source``; a row without a report time is dated ``date``.
    Rows may carry 整改措施 (``measure``), 责任人 (``owner``), a deadline and a unit. The whole batch
    goes in in one transaction (rejected rows to the rejects file, as `sanigrid import` does); a
    name already in the store is refused. Returns the report and the batch's one-line progress."""
    import pandas as pd

    from sanigrid.geo.problems import inspection_progress
    from sanigrid.layers.catalogue import PROBLEM_SOURCES
    from sanigrid.layers.importers import import_file

    name = name.strip()
    if not name:
        raise AnalysisError("--name is empty; give the inspection report's name, e.g. 2026年11月县创卫办暗访")
    if source not in PROBLEM_SOURCES:
        raise AnalysisError(f"--source '{source}' is not a problem source; use one of {'、'.join(PROBLEM_SOURCES)}")
    try:
        day = pd.Timestamp(date)
    except ValueError:
        raise AnalysisError(f"--date '{date}' is not a date; write it as 2026-11-10") from None
    st = project.store
    if st.has("problems"):
        old = st.read("problems", columns=["batch"])
        if "batch" in old and (old["batch"].astype("object") == name).any():
            n = int((old["batch"].astype("object") == name).sum())
            raise AnalysisError(f"{st.location}: the inspection report '{name}' is already in the store ({n} items); "
                                "import a new report under another --name")
    rep = import_file(project, "problems", path, coords=coords, mapping=mapping, layer=layer, strict=strict, fix=fix,
                      values=values, defaults={"reported_at": f"{day:%Y-%m-%d %H:%M}"},
                      overrides={"batch": name, "batch_date": f"{day:%Y-%m-%d}", "source": source})
    line = None
    if rep.imported:
        p, _, _ = load_problems(project)
        prog = inspection_progress(p[p["batch"] == name], as_of=report_date(project), settings=project.settings)
        line = str(prog["line"].iloc[0]) if len(prog) else None
    return InspectionImport(report=rep, progress=line)


def run_inspections(project: Project, *, as_of: datetime | None = None) -> pd.DataFrame:
    """The progress of every inspection report in the store (see :func:`geo.problems.inspection_progress`)."""
    from sanigrid.geo.problems import inspection_progress

    p, _, _ = load_problems(project)
    return inspection_progress(p, as_of=report_date(project, as_of), settings=project.settings)


# ------------------------------------------------------------------ commands
def _date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    import pandas as pd

    try:
        return pd.Timestamp(value).to_pydatetime()
    except ValueError:
        raise AnalysisError(f"--{name} '{value}' is not a date; write it as 2026-11-15 or '2026-11-15 18:00'") from None


AsOf = Annotated[str | None, typer.Option("--as-of", help="date of the report (default: now)")]


@app.command()
def problems(project: ProjectOpt = DEFAULT_PROJECT, as_of: AsOf = None,
             xlsx: Annotated[bool, typer.Option("--xlsx/--no-xlsx", help="write the 责任清单 .xlsx")] = True) -> None:
    """问题状态汇总、逾期清单和责任清单 / status summary, overdue cases and the responsibility list."""
    import pandas as pd

    with console.status("问题状态 problems …"):
        rep = run_problems(load(project), as_of=_date(as_of, "as-of"), xlsx=xlsx)
    table = Table(title=f"问题状态 截至 {pd.Timestamp(rep.as_of):%Y-%m-%d %H:%M}")
    table.add_column("状态")
    table.add_column("数量", justify="right")
    for _, r in rep.status.iterrows():
        table.add_row(str(r["status"]), str(r["count"]))
    console.print(table)
    if len(rep.overdue):
        top = Table(title=f"逾期最久的问题 (共 {len(rep.overdue)} 件)")
        for c in ("编号", "类别", "网格", "责任单位", "逾期天数"):
            top.add_column(c)
        for _, r in rep.overdue.head(10).iterrows():
            top.add_row(str(r["problem_id"]), str(r["category"]), str(r["grid_code"]), str(r["unit"]),
                        f"{r['days_overdue']:.1f}")
        console.print(top)
    if rep.filled:
        console.print("[dim]补齐 (仅用于本次统计): " + ", ".join(f"{k} {v}" for k, v in rep.filled.items()) + "[/]")
    for line in rep.inspections:
        console.print(f"检查批次 {line}")
    if rep.path:
        console.print(f"责任清单 → {rep.path}")


@app.command("import-inspection")
def import_inspection_cmd(
    file: Annotated[Path, typer.Argument(help="the report's items: xlsx/csv with coordinates, or a vector file")],
    name: Annotated[str, typer.Option("--name", help="报告名称, 如 2026年11月县创卫办暗访 / the report's name")],
    date: Annotated[str, typer.Option("--date", help="the day of the inspection, e.g. 2026-11-10")],
    source: Annotated[str, typer.Option("--source", help="暗访 or 督查 (or another problem source)")] = "暗访",
    project: ProjectOpt = DEFAULT_PROJECT,
    coords: Annotated[str, typer.Option("--coords", help="wgs84, gcj02, bd09 or cgcs2000")] = "wgs84",
    strict: Annotated[bool, typer.Option("--strict", help="refuse the whole report if any row is rejected")] = False,
) -> None:
    """导入暗访/督查报告 / import an inspection report as one batch of problems, with its progress line."""
    from sanigrid.scripts.project import _print_path, _print_validation

    run = run_import_inspection(load(project), file, name=name, date=date, source=source, coords=coords,
                                strict=strict)
    rep = run.report
    _print_validation(rep.validation, title=f"{file.name} → problems ({name})")
    console.print(f"接受 accepted {rep.accepted}, 拒绝 rejected {rep.rejected}, 写入 written {rep.imported}")
    _print_path("拒绝文件 rejects file", rep.rejects_path)
    if rep.refused:
        console.print(f"[bold red]未导入 nothing imported:[/] {rep.reason}; the store is unchanged.")
        raise typer.Exit(1)
    if run.progress:
        console.print(f"检查批次 {run.progress}")


@app.command()
def inspections(project: ProjectOpt = DEFAULT_PROJECT, as_of: AsOf = None) -> None:
    """暗访/督查报告整改进度 / progress of every inspection report, one line each."""
    prog = run_inspections(load(project), as_of=_date(as_of, "as-of"))
    if not len(prog):
        console.print("没有检查批次 no inspection report in the store "
                      "(sanigrid import-inspection FILE --name … --date …)")
    for line in prog["line"]:
        console.print(line)


@app.command()
def hotspots(
    project: ProjectOpt = DEFAULT_PROJECT,
    since: Annotated[str | None, typer.Option(help="only reports from this date")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c", help="a problem category (repeatable)")]
    = None,
    as_of: AsOf = None,
) -> None:
    """问题聚集区、冷热点 (Gi*)、时空趋势和反弹 / clusters, hot and cold spots, trends and rebounds."""
    with console.status("热点分析 hotspots …"):
        run = run_hotspots(load(project), since=_date(since, "since"), categories=category or None,
                           as_of=_date(as_of, "as-of"))
    r = run.hotspots
    cells = r.cells
    console.print(f"聚集区 clusters: {len(r.clusters)}  ·  网格单元 cells: {len(cells)} "
                  f"({r.params['cell_size_m']:g} m, band {r.params['band_m']:g} m, {r.params['weeks']} weeks)")
    if r.params.get("gi_skipped"):
        console.print(f"[yellow]未做冷热点分析: {r.params['gi_skipped']}[/]")
    counts = cells["label"].value_counts()
    console.print("冷热点: " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    trends = cells.loc[cells["trend"] != "", "trend"].value_counts()
    if len(trends):
        console.print("时空模式: " + "  ".join(f"{k} {v}" for k, v in trends.items()))
    if len(r.piles):
        console.print(f"[yellow]重复坐标堆点 {len(r.piles)} 处, {r.params['pile_reports']} 条上报"
                      f"{'已排除' if r.params['piles_excluded'] else '未排除'} (疑似默认定位)[/]")
    rb = run.rebounds
    console.print(f"反弹 rebounds: {len(rb.pairs)} 对, 多次反弹地点 {len(rb.places)} 处")
    if run.path:
        console.print(f"→ {run.path}")


class RankBy(enum.StrEnum):
    grid = "grid"
    unit = "unit"


@app.command()
def rank(
    project: ProjectOpt = DEFAULT_PROJECT,
    period: Annotated[str, typer.Option(help="month, week or quarter")] = "month",
    as_of: AsOf = None,
    by: Annotated[RankBy, typer.Option("--by", help="grid 网格排名 / unit 职能部门排名")] = RankBy.grid,
) -> None:
    """网格排名通报 / rank the grids (scorecard layer and .xlsx); --by unit ranks the departments."""
    import pandas as pd

    if by is RankBy.unit:
        with console.status("职能部门排名 rank --by unit …"):
            ures, upath = run_unit_rank(load(project), period=period, as_of=_date(as_of, "as-of"))
        start, end = ures.period
        table = Table(title=f"职能部门排名 {start:%Y-%m-%d} 至 {end:%Y-%m-%d}")
        for c in ("排名", "责任单位", "得分", "交办", "按期结案率", "逾期", "名次变化"):
            table.add_column(c)
        for _, r in ures.units.iterrows():
            ch = r.get("rank_change")
            table.add_row(str(r["rank"]), str(r["unit"]), f"{r['score']:.1f}", str(r["reports"]),
                          f"{100 * r['on_time_rate']:.1f}%", str(r["overdue"]), "" if pd.isna(ch) else f"{int(ch):+d}")
        console.print(table)
        if upath:
            console.print(f"职能部门排名通报 → {upath}")
        return
    with console.status("网格排名 rank …"):
        res, path = run_rank(load(project), period=period, as_of=_date(as_of, "as-of"))
    start, end = res.period
    table = Table(title=f"网格排名 {start:%Y-%m-%d} 至 {end:%Y-%m-%d}")
    for c in ("排名", "网格", "牵头单位", "得分", "名次变化"):
        table.add_column(c)
    g = res.grids
    for _, r in g.head(15).iterrows():
        ch = r.get("rank_change")
        table.add_row(str(r["rank"]), str(r["code"]), str(r.get("lead_unit") or ""), f"{r['score']:.1f}",
                      "" if pd.isna(ch) else f"{int(ch):+d}")
    console.print(table)
    if path:
        console.print(f"排名通报 → {path}")
