"""`sanigrid coverage` and `sanigrid site`: service areas, coverage gaps and new-site suggestions.

The plain functions :func:`run_coverage` and :func:`run_siting` read the layers from the project's
store, call ``geo.coverage`` / ``geo.siting``, write the result layers in one store transaction
and an .xlsx table (Chinese headers) to ``outputs/``; the typer commands only parse and print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sanigrid.geo._errors import AnalysisError
from sanigrid.layers.catalogue import FACILITY_KINDS
from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load

if TYPE_CHECKING:  # the analyses and their libraries are imported by the functions that run them
    import geopandas as gpd
    import pandas as pd

    from sanigrid.geo.network import Network
    from sanigrid.layers.project import Project


_HEADERS = {
    "rank": "排名", "grid_code": "网格编码", "street_m": "道路长度(米)", "covered_m": "已覆盖长度(米)",
    "uncovered_m": "未覆盖长度(米)", "coverage_pct": "覆盖率(%)", "households": "户数",
    "households_uncovered": "未覆盖户数", "dist_mean_m": "平均距离(米)", "dist_median_m": "距离中位数(米)",
    "dist_max_m": "最大距离(米)", "item": "项目", "value": "数值", "layer": "图层", "name": "名称",
    "row": "行号", "reason": "原因", "busy": "繁华街道", "length_m": "长度(米)", "max_m": "允许间距(米)",
    "from_toilet": "起点公厕", "to_toilet": "终点公厕", "toilet_class": "类别", "required": "要求",
    "distance_m": "最近设施距离(米)", "covered": "已覆盖", "road_class": "道路等级",
    "facility_kind": "设施类型", "component": "分量", "main": "主路网", "gain": "新增覆盖",
    "street_m_new": "新增覆盖街道(米)", "weight": "需求量", "lscp": "全覆盖方案选中", "excluded": "排除原因",
}


def _preset(project: Project, kind: str) -> Any:
    """The facility preset of ``kind`` (the settings' ``[facilities]`` are the one list of facility kinds)."""
    preset = project.settings.facilities.get(kind)
    if preset is None:
        have = ", ".join(project.settings.facilities) or "(none)"
        raise AnalysisError(f"no [facilities.{kind}] preset in {project.settings_path} (presets: {have}); "
                            f"add one with radius_m and source (a preset may name any of: {', '.join(FACILITY_KINDS)})")
    return preset


def _inputs(project: Project, kind: str) -> dict[str, gpd.GeoDataFrame | None]:
    """The layers of a coverage or siting run; facility layers hold their built facilities only
    (:func:`layers.projects.built`), and ``KIND:all`` every facility of ``kind`` with its projects."""
    from sanigrid.layers.projects import built

    st = project.store
    streets = st.read("streets")
    if not len(streets):
        raise AnalysisError(f"{st.location}: layer 'streets' is empty; import streets first "
                            "(or run `sanigrid demo`), or use --euclidean")
    out: dict[str, gpd.GeoDataFrame | None] = {"streets": streets}
    for k in ("alleys", "residents", "grids", kind, "markets", "toilets"):
        f = st.read(k) if st.has(k) else None
        out[k] = f if f is not None and len(f) else None
    if out[kind] is None:
        out[kind] = st.read(kind)
    out[f"{kind}:all"] = out[kind]
    for k in FACILITY_KINDS:
        if out.get(k) is not None:
            out[k] = built(out[k])
    return out


def _network(project: Project) -> Network:
    """The street network of the project's streets and alleys (built once per `sanigrid analyse` run:
    every facility kind, the siting and the project comparison walk the same network)."""
    from sanigrid.geo.network import build_network
    from sanigrid.scripts._memo import shared

    tol = project.settings.network.snap_tolerance_m

    def build() -> Network:
        st = project.store
        alleys = st.read("alleys") if st.has("alleys") else None
        return build_network(st.read("streets"), alleys if alleys is not None and len(alleys) else None,
                             snap_tolerance_m=tol)

    return shared(project, ("network", tol), build, copy_value=False)


def _replace_kind(tx: Any, layer: str, kind: str, frame: gpd.GeoDataFrame, params: dict[str, Any]) -> None:
    """Write ``frame`` as the rows of ``kind`` in ``layer``, keeping the other kinds' rows.

    The layer's parameters hold one entry per facility kind (``{kind: params}``).
    """
    import geopandas as gpd
    import pandas as pd

    old = tx.read(layer) if tx.has(layer) else None
    meta = tx.meta(layer).get("params", {}) if old is not None else {}
    kept = {k: v for k, v in meta.items() if k in FACILITY_KINDS and k != kind}  # one entry per facility kind
    if old is not None and len(old) and "facility_kind" in old.columns:
        others = old[old["facility_kind"].astype("object") != kind]
        if len(others):
            frame = pd.concat([others.to_crs(frame.crs), frame], ignore_index=True)
    tx.write(layer, gpd.GeoDataFrame(frame, geometry="geometry", crs=frame.crs), params={**kept, kind: params})


def _summary_sheet(summary: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    from sanigrid.layers.export import params_table

    return params_table({**params, **summary})


def run_coverage(project: Project, kind: str, *, radius_m: float | None = None, euclidean: bool = False
                 ) -> dict[str, Any]:
    """Service areas and gaps of one facility kind, written to the store and an .xlsx table.

    Writes layers ``network_components``, ``service_areas`` and ``coverage_gaps`` (one
    transaction, with the settings that produced them) and ``outputs/coverage_<kind>.xlsx``.
    Returns the summary (with ``xlsx`` = the table's path).
    """
    import pandas as pd

    from sanigrid.geo.coverage import coverage, toilet_class_check, toilet_spacing
    from sanigrid.geo.network import components_frame
    from sanigrid.layers.export import zh_headers
    from sanigrid.layers.workbook import StagedWorkbook

    s = project.settings
    preset = _preset(project, kind)
    radius = float(radius_m if radius_m is not None else preset.radius_m)
    source = preset.source if radius_m is None else f"命令行指定 --radius {radius:g} (预设: {preset.source})"
    inp = _inputs(project, kind)
    streets = inp["streets"]
    net = _network(project)
    comps = components_frame(net)
    res = coverage(inp[kind], streets, inp["alleys"], kind=kind, radius_m=radius, residents=inp["residents"],
                   grids=inp["grids"], euclidean=euclidean, max_snap_m=s.network.max_snap_m,
                   buffer_m=s.network.area_buffer_m, network=net, source=source)
    spacing = class_check = None
    if kind == "toilets":
        spacing = toilet_spacing(inp[kind], streets, busy_max_m=s.spacing.busy_street_max_m,
                                 ordinary_max_m=s.spacing.ordinary_street_max_m, near_m=s.toilet_class.near_m)
        class_check = toilet_class_check(inp[kind], streets, inp["markets"], min_class=s.toilet_class.min_class,
                                         road_classes=list(s.toilet_class.road_classes),
                                         near_m=s.toilet_class.near_m)
    params = dict(res.params)
    gaps = res.gaps[["facility_kind", "name", "length_m", "distance_m", "grid_code", "geometry"]]
    sheets: dict[str, pd.DataFrame] = {"汇总": _summary_sheet(res.summary, params),
                                       "网格排名": res.grid_table,
                                       "覆盖盲区": gaps.drop(columns="geometry").rename(columns={"name": "道路"})}
    if res.demand is not None:
        d = res.demand
        cols = [c for c in ("name", "households", "distance_m", "grid_code") if c in d.columns]
        sheets["未覆盖小区"] = pd.DataFrame(d.loc[~d["covered"], cols])
    if spacing is not None:
        sheets["公厕间距超标"] = pd.DataFrame(spacing.drop(columns="geometry"))
    if class_check is not None:
        sheets["公厕类别不足"] = class_check
    sheets["未接入路网"] = res.unattached
    sheets["路网分量"] = pd.DataFrame(comps.drop(columns="geometry"))
    xlsx = project.output_path(f"coverage_{kind}.xlsx")
    # the report first (to a temporary file), then the store, then the report is published:
    # a report that fails leaves the store as it was, and a failed store write leaves the old report
    with StagedWorkbook(sheets, xlsx, headers=zh_headers("coverage_gaps", _HEADERS)), \
            project.store.transaction() as tx:
        tx.write("network_components", comps, params={"snap_tolerance_m": s.network.snap_tolerance_m,
                                                      "date": params["date"]})
        _replace_kind(tx, "service_areas", kind, res.service_areas, params)
        _replace_kind(tx, "coverage_gaps", kind, gaps, params)
    out = dict(res.summary)
    out.update({"xlsx": str(xlsx), "gaps": int(len(gaps)), "unattached": int(len(res.unattached)),
                "spacing_violations": int(len(spacing)) if spacing is not None else None,
                "class_violations": int(len(class_check)) if class_check is not None else None})
    return out


def _read_optional(path: Path | None, project: Project, what: str) -> gpd.GeoDataFrame | None:
    if path is None:
        return None
    import geopandas as gpd

    try:
        f = gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own errors
        raise AnalysisError(f"{path}: cannot read the {what} file ({e}); "
                            "give a GeoPackage, shapefile or GeoJSON") from None
    if f.crs is None:
        raise AnalysisError(f"{path}: the {what} file has no CRS; save it with one (e.g. EPSG:4326)")
    return f.to_crs(project.store.crs)


def run_siting(project: Project, kind: str, *, new: int = 5, exact: bool = False, lscp: bool = False,
               radius_m: float | None = None, candidates: Path | None = None, exclusion: Path | None = None,
               euclidean: bool = False, planned_fixed: bool = True) -> dict[str, Any]:
    """Suggest ``new`` sites for one facility kind; writes layer ``suggested_sites`` and an .xlsx table.

    ``exact`` solves the integer program (time limit ``settings.network.exact_time_limit_s``);
    ``lscp`` also finds the fewest sites that serve all reachable demand. ``candidates`` and
    ``exclusion`` are optional vector files (candidate points; polygons where no site may go).
    ``planned_fixed``: planned and under-construction sites (规划/在建) count as existing, so new
    sites go where they will not serve; otherwise only built ones do. Returns the summary (with
    ``xlsx`` and ``fixed_planned``, the number of projects taken as fixed).
    """
    import pandas as pd

    from sanigrid.geo.siting import suggest_sites
    from sanigrid.layers.export import zh_headers
    from sanigrid.layers.projects import is_pending, when_done
    from sanigrid.layers.workbook import StagedWorkbook

    s = project.settings
    preset = _preset(project, kind)
    radius = float(radius_m if radius_m is not None else preset.radius_m)
    inp = _inputs(project, kind)
    everything = inp[f"{kind}:all"]
    existing = when_done(everything) if planned_fixed and everything is not None else inp[kind]
    fixed = int(is_pending(everything).sum()) if planned_fixed and everything is not None else 0
    res = suggest_sites(
        existing, inp["streets"], inp["alleys"], kind=kind, radius_m=radius, new=new,
        residents=inp["residents"], grids=inp["grids"],
        candidates=_read_optional(candidates, project, "candidate sites"),
        exclusion=_read_optional(exclusion, project, "exclusion zones"),
        min_distance_to_existing_m=s.network.min_distance_to_existing_m,
        candidate_spacing_m=s.network.candidate_spacing_m, snap_tolerance_m=s.network.snap_tolerance_m,
        max_snap_m=s.network.max_snap_m, exact=exact, with_lscp=lscp,
        time_limit_s=s.network.exact_time_limit_s, euclidean=euclidean, source=preset.source,
        network=_network(project),
    )
    params = dict(res.params, fixed_planned=fixed)
    sites = res.sites
    sheets = {"汇总": _summary_sheet(res.summary, params),
              "建议新址": pd.DataFrame(sites.drop(columns="geometry")).rename(
                  columns={"street_m": "street_m_new", "households": "新增服务户数"})}
    if len(res.unreachable):
        sheets["无法覆盖"] = pd.DataFrame(res.unreachable.drop(columns="geometry"))
    if res.lscp is not None:
        c = res.candidates
        sheets["全覆盖方案"] = pd.DataFrame(c.loc[c["lscp"], ["name"]])
    xlsx = project.output_path(f"sites_{kind}.xlsx")
    with StagedWorkbook(sheets, xlsx, headers=zh_headers("suggested_sites", _HEADERS)), \
            project.store.transaction() as tx:
        _replace_kind(tx, "suggested_sites", kind, sites[["facility_kind", "rank", "gain", "households", "grid_code",
                                                          "name", "street_m", "geometry"]], params)
    out = dict(res.summary)
    out["xlsx"] = str(xlsx)
    out["fixed_planned"] = fixed
    out["sites"] = sites.drop(columns="geometry").to_dict("records")
    return out


@dataclass
class PlannedRun:
    """What `sanigrid coverage KIND --with-planned` found and wrote (see :func:`geo.projects.planned_coverage`)."""

    summary: dict[str, Any]
    grids: pd.DataFrame
    projects: pd.DataFrame
    path: Path


def run_planned_coverage(project: Project, kind: str, *, radius_m: float | None = None, euclidean: bool = False,
                         as_of: datetime | None = None) -> PlannedRun:
    """Coverage of ``kind`` now and when its projects (规划/在建) are done, per grid and per project:
    ``outputs/建设项目覆盖对比_<kind>.xlsx`` (汇总, 网格对比, 项目新增覆盖, 逾期项目). The store is not
    changed (its coverage layers are today's: :func:`run_coverage`). ``as_of`` (default: the
    project's one "as of" instant, :func:`layers.cases.store_as_of`) decides which projects are late."""
    import pandas as pd

    from sanigrid.geo.projects import GRID_HEADERS, planned_coverage
    from sanigrid.layers.cases import store_as_of
    from sanigrid.layers.export import params_table
    from sanigrid.layers.projects import PROJECT_HEADERS
    from sanigrid.layers.workbook import write_xlsx

    s = project.settings
    preset = _preset(project, kind)
    radius = float(radius_m if radius_m is not None else preset.radius_m)
    t = store_as_of(project.store, settings=s, given=as_of)
    inp = _inputs(project, kind)
    net = _network(project)
    res = planned_coverage(inp[f"{kind}:all"], inp["streets"], inp["alleys"], kind=kind, radius_m=radius, as_of=t,
                           residents=inp["residents"], grids=inp["grids"], network=net, euclidean=euclidean,
                           max_snap_m=s.network.max_snap_m, buffer_m=s.network.area_buffer_m, source=preset.source)
    summary = {**res.summary, "as_of": str(pd.Timestamp(t))}
    plist = res.projects.copy()
    plist["late"] = plist["late"].map({True: "是", False: "否"})
    late = plist[res.projects["late"].to_numpy(dtype=bool)]
    path = project.output_path(f"建设项目覆盖对比_{kind}.xlsx")
    write_xlsx({"汇总": params_table(summary), "网格对比": res.grids, "项目新增覆盖": plist, "逾期项目": late},
               path, headers={**GRID_HEADERS, **PROJECT_HEADERS, **_PLANNED_HEADERS})
    return PlannedRun(summary=summary, grids=res.grids, projects=res.projects, path=path)


_PLANNED_HEADERS = {"built": "建成设施数", "projects": "建设项目数", "late": "是否逾期",
                    "coverage_pct_now": "现状覆盖率(%)", "coverage_pct_done": "建成后覆盖率(%)",
                    "covered_km_now": "现状覆盖长度(公里)", "covered_km_done": "建成后覆盖长度(公里)",
                    "new_street_km": "新增覆盖街道(公里)", "households_covered_now": "现状覆盖户数",
                    "households_covered_done": "建成后覆盖户数", "new_households": "新增覆盖户数"}


def run_projects(project: Project, *, as_of: datetime | None = None) -> tuple[pd.DataFrame, Path]:
    """Every facility project (规划/在建) of the preset kinds, late ones first:
    ``outputs/设施建设项目_<date>.xlsx``. Returns the list (``late`` as bool) and the path."""
    import pandas as pd

    from sanigrid.layers.cases import store_as_of
    from sanigrid.layers.projects import PROJECT_HEADERS, project_list
    from sanigrid.layers.workbook import write_xlsx

    st = project.store
    t = store_as_of(st, settings=project.settings, given=as_of)
    layers = {k: st.read(k) for k in project.settings.facilities if st.has(k)}
    plist = project_list(layers, as_of=t)
    shown = plist.assign(facility_kind=plist["facility_kind"].map(project.settings.facility_title),
                         late=plist["late"].map({True: "是", False: "否"}))
    path = project.output_path(f"设施建设项目_{pd.Timestamp(t):%Y%m%d}.xlsx")
    write_xlsx({"建设项目": shown, "逾期项目": shown[plist["late"].to_numpy(dtype=bool)]}, path,
               headers=PROJECT_HEADERS)
    return plist, path


# ------------------------------------------------------------------------------------ commands
KindArg = Annotated[str, typer.Argument(help="a facility kind with a [facilities.KIND] preset in sanigrid.toml, "
                                             "e.g. toilets, collection_points, transfer_stations, markets")]


@app.command("coverage")
def coverage_cmd(
    kind: KindArg,
    radius: Annotated[float | None, typer.Option("--radius", help="service radius in metres (default: preset)")] = None,
    euclidean: Annotated[bool, typer.Option("--euclidean", help="straight-line distance instead of streets")] = False,
    with_planned: Annotated[bool, typer.Option("--with-planned", help="also: coverage when the planned and "
                                               "under-construction sites are done, per grid and project")] = False,
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """服务范围与覆盖盲区 / service areas and coverage gaps of one facility kind (built sites only)."""
    proj = load(project)
    with console.status(f"计算 {kind} 覆盖 / computing coverage …"):
        out = run_coverage(proj, kind, radius_m=radius, euclidean=euclidean)
    console.print(f"[bold]{kind}[/] {out['method']} {out['radius_m']:g} m: 道路覆盖率 coverage "
                  f"[bold]{out['coverage_pct']}%[/] ({out['covered_km']} / {out['street_km']} km), "
                  f"盲区 gaps {out['gaps']}, 路网分量 components {out['components']}")
    if "households" in out:
        console.print(f"未覆盖户数 households not served: {out['households_uncovered']:.0f} / {out['households']:.0f}")
    if out.get("spacing_violations") is not None:
        console.print(f"公厕间距超标 spacing violations: {out['spacing_violations']}, "
                      f"类别不足 class violations: {out['class_violations']}")
    if out["unattached"]:
        console.print(f"[yellow]未接入路网 not attached to the network: {out['unattached']} (see the xlsx)[/]")
    console.print(f"表格 table: {out['xlsx']}")
    if with_planned:
        with console.status(f"建设项目前后对比 {kind} / coverage when the projects are done …"):
            run = run_planned_coverage(proj, kind, radius_m=radius, euclidean=euclidean)
        _print_planned(run)


def _print_planned(run: PlannedRun) -> None:
    import pandas as pd

    s = run.summary
    line = (f"现状 now {s['coverage_pct_now']}% → 建成后 when done {s['coverage_pct_done']}% "
            f"(+{s['new_street_km']} km); 建设项目 projects {s['projects']}, 逾期 late {s['late']}")
    if "new_households" in s:
        line += f"; 新增覆盖户数 households newly served {s['new_households']:.0f}"
    console.print(line)
    if len(run.projects):
        table = Table(title="各项目新增覆盖 / what each project adds")
        for c in ("名称", "状态", "计划建成", "项目单位", "网格", "新增街道(米)", "新增户数", "逾期天数"):
            table.add_column(c)
        for _, r in run.projects.iterrows():
            when = r["planned_date"]
            table.add_row(str(r["name"]), str(r["build_status"]), "" if pd.isna(when) else f"{when:%Y-%m-%d}",
                          str(r["project_unit"] or ""), str(r["grid_code"] or ""), f"{r['new_street_m']:.0f}",
                          "" if pd.isna(r["new_households"]) else f"{r['new_households']:.0f}",
                          str(r["days_late"]) if r["late"] else "")
        console.print(table)
    console.print(f"前后对比 → {run.path}")


@app.command("projects")
def projects_cmd(
    project: ProjectOpt = DEFAULT_PROJECT,
    as_of: Annotated[str | None, typer.Option("--as-of", help="date the projects are judged at (default: now)")]
    = None,
) -> None:
    """设施建设项目清单 / facility projects (规划/在建), late ones first."""
    import pandas as pd

    when = None
    if as_of is not None:
        try:
            when = pd.Timestamp(as_of).to_pydatetime()
        except ValueError:
            raise AnalysisError(f"--as-of '{as_of}' is not a date; write it as 2026-11-15") from None
    plist, path = run_projects(load(project), as_of=when)
    table = Table(title=f"设施建设项目 {len(plist)} 个, 逾期 {int(plist['late'].sum())} 个")
    for c in ("类型", "名称", "状态", "计划建成", "项目单位", "逾期天数"):
        table.add_column(c)
    for _, r in plist.iterrows():
        d = r["planned_date"]
        table.add_row(str(r["facility_kind"]), str(r["name"]), str(r["build_status"]),
                      "" if pd.isna(d) else f"{d:%Y-%m-%d}", str(r["project_unit"] or ""),
                      f"[red]{r['days_late']}[/]" if r["late"] else "")
    console.print(table)
    console.print(f"项目清单 → {path}")


@app.command("site")
def site_cmd(
    kind: KindArg,
    new: Annotated[int, typer.Option("--new", help="number of new sites")] = 5,
    exact: Annotated[bool, typer.Option("--exact", help="solve the integer program (time-limited)")] = False,
    lscp: Annotated[bool, typer.Option("--lscp", help="also: fewest sites covering all reachable demand")] = False,
    radius: Annotated[float | None, typer.Option("--radius", help="service radius in metres")] = None,
    candidates: Annotated[Path | None, typer.Option("--candidates", help="file of candidate sites")] = None,
    exclude: Annotated[Path | None, typer.Option("--exclude", help="file of exclusion zones")] = None,
    euclidean: Annotated[bool, typer.Option("--euclidean", help="straight-line distance")] = False,
    planned: Annotated[bool, typer.Option("--planned/--no-planned", help="planned and under-construction sites "
                                          "count as existing (default) or are ignored")] = True,
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """建议新址 / suggest new sites (maximal coverage; --lscp for full coverage)."""
    proj = load(project)
    with console.status(f"选址计算 {kind} / siting …"):
        out = run_siting(proj, kind, new=new, exact=exact, lscp=lscp, radius_m=radius, candidates=candidates,
                         exclusion=exclude, euclidean=euclidean, planned_fixed=planned)
    if out["fixed_planned"]:
        console.print(f"已计入规划/在建 {out['fixed_planned']} 个 (planned sites taken as fixed)")
    console.print(f"[bold]{kind}[/] {new} 个新址 new sites serve {out['newly_served']:.0f} {out['demand_unit']} "
                  f"({out['newly_served_pct']}% of the unserved), 距最优至多 gap ≤ {out['gap_pct']}% "
                  f"\\[{out['solver']}, {out['status']}, {out['seconds']} s]")
    for site in out["sites"]:
        console.print(f"  {site['rank']}. {site['name']}  +{site['gain']:g}  网格 {site['grid_code'] or '-'}")
    if "lscp_sites" in out:
        console.print(f"全覆盖最少需 LSCP: {out['lscp_sites']} 个 (下界 lower bound {out['lscp_lower_bound']}, "
                      f"{out['lscp_status']})")
    if out["unreachable"]:
        console.print(f"[yellow]无法覆盖 unreachable demand: {out['unreachable']:.0f} {out['demand_unit']}[/]")
    console.print(f"表格 table: {out['xlsx']}")
