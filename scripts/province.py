"""`sanigrid province`: many counties' analyses as one parallel run on Dask, and the county ranking.

Each county is one task (:func:`run_county`) on a ``dask.distributed`` cluster: a LocalCluster on
this machine by default (``--workers N`` processes, bound to 127.0.0.1, no dashboard), or an
existing scheduler (``--scheduler tcp://HOST:8786``) whose workers can read the counties' stores
(the same paths, or one PostGIS server). A task runs the county's own commands — problems,
coverage of every facility preset, hotspots, rank (:mod:`sanigrid.scripts.problems`,
:mod:`sanigrid.scripts.coverage`) — so each county's store and ``outputs/`` are written exactly as the
single-county commands write them, and returns one row (:func:`sanigrid.geo.province.county_summary`).
A county that fails is reported with its error; the others finish. The rows are ranked
(:func:`sanigrid.geo.province.rank_counties`) and written to ``OUT``: ``县级排名_<period>.xlsx``
(Chinese headers), ``县级排名.gpkg`` and ``县级排名.parquet`` (the counties' outlines with their rank)
and ``县级排名_A3.pdf`` (the printable map).
"""

from __future__ import annotations

import logging
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sanigrid.geo._errors import AnalysisError
from sanigrid.scripts._app import app, console

if TYPE_CHECKING:
    import geopandas as gpd

    from sanigrid.layers.project import Project

RANKING_LAYER = "县级排名"
_FAILED = "失败县"


@dataclass(frozen=True)
class CountySpec:
    """Where a county is: a project folder, or a PostGIS schema of ``store_url`` (outputs in ``root``)."""

    root: str
    store_url: str | None = None
    schema: str | None = None
    settings: str | None = None  # the settings file a PostGIS county starts from (default: the defaults)

    @property
    def label(self) -> str:
        return self.schema or Path(self.root).name


@dataclass
class CountyRun:
    """What one county task returned (or the error it raised)."""

    spec: CountySpec
    code: str = ""
    name: str = ""
    row: gpd.GeoDataFrame | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    error: str = ""
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


def county_specs(paths: list[str], *, store_url: str | None = None, out: Path | None = None,
                 settings: str | None = None) -> list[CountySpec]:
    """The counties named on the command line.

    Without ``store_url`` each path is a project folder, or a folder of project folders (each
    subfolder holding ``sanigrid.toml``). With ``store_url`` each is a PostGIS schema; its settings
    and outputs live in ``out/<schema>/``, the settings copied on the first run from ``settings``: a
    file shared by every county, or a folder holding ``<schema>.toml`` for each (each county its own
    name and code); without it, the defaults.
    """
    from sanigrid.layers.settings import SETTINGS_NAME

    specs: list[CountySpec] = []
    for p in paths:
        if store_url:
            own = settings
            if settings and Path(settings).is_dir():
                own = str(Path(settings) / f"{p}.toml")
                if not Path(own).is_file() and not ((out or Path(".")) / p / SETTINGS_NAME).exists():
                    raise AnalysisError(f"{settings}: no {p}.toml for schema {p}; write one county settings "
                                        "file per schema there (sanigrid init writes one to start from)")
            specs.append(CountySpec(str(((out or Path(".")) / p).resolve()), store_url=store_url, schema=p,
                                    settings=own))
            continue
        root = Path(p)
        if (root / SETTINGS_NAME).exists():
            specs.append(CountySpec(str(root.resolve())))
        elif root.is_dir() and (subs := sorted(d for d in root.iterdir() if (d / SETTINGS_NAME).exists())):
            specs += [CountySpec(str(d.resolve())) for d in subs]
        else:
            raise AnalysisError(f"{root}: not a county project (no {SETTINGS_NAME}) and no county projects in it; "
                                "pass project folders, or schemas with --store-url")
    labels = [s.label for s in specs]
    if len(set(labels)) < len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise AnalysisError(f"county named twice: {', '.join(dup)}")
    return specs


def open_county(spec: CountySpec) -> Project:
    """The county's project; for a PostGIS schema, a folder ``spec.root`` whose settings name the schema."""
    from sanigrid.layers.project import open_project
    from sanigrid.layers.settings import SETTINGS_NAME, Settings, load_settings, save_settings

    root = Path(spec.root)
    if spec.store_url and not (root / SETTINGS_NAME).exists():
        s = load_settings(Path(spec.settings)) if spec.settings else Settings()
        s.project.store_url, s.project.store_schema = spec.store_url, spec.schema or s.project.store_schema
        root.mkdir(parents=True, exist_ok=True)
        save_settings(s, root / SETTINGS_NAME)
    return open_project(root)


def run_county(spec: CountySpec, *, as_of: datetime | None = None, period: str = "month") -> CountyRun:
    """One county's analyses, each as its single-county command runs it, and its summary row.

    Runs in a Dask worker (or anywhere): every input comes from the county's store and settings,
    nothing from the process. Raises what the commands raise; :func:`run_province` reports it.
    """
    from sanigrid.scripts import coverage, problems

    t0 = time.perf_counter()
    steps: dict[str, float] = {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        steps[name] = time.perf_counter() - t

    project = open_county(spec)
    s = project.settings
    with step("problems"):
        problems.run_problems(project, as_of=as_of)
    for kind in s.facilities:
        with step(f"coverage {kind}"):
            coverage.run_coverage(project, kind)
    with step("hotspots"):
        problems.run_hotspots(project, as_of=as_of)
    with step("rank"):
        problems.run_rank(project, period=period, as_of=as_of)
    with step("summary"):
        row = summarise_county(project, as_of=as_of, period=period)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    return CountyRun(spec, code=s.project.county_code, name=s.project.name, row=row,
                     seconds=time.perf_counter() - t0, peak_rss_mb=peak, steps=steps)


def summarise_county(project: Project, *, as_of: datetime | None = None, period: str = "month") -> gpd.GeoDataFrame:
    """The county's row of the ranking (:func:`sanigrid.geo.province.county_summary`) from what its store
    holds after the analyses: reports, grids, streets, alleys, coverage gaps and outline."""
    from sanigrid.geo.province import county_summary
    from sanigrid.scripts import problems

    s, st = project.settings, project.store
    p, grids, _ = problems.load_problems(project)

    def opt(kind: str) -> gpd.GeoDataFrame | None:
        f = st.read(kind) if st.has(kind) else None
        return f if f is not None and len(f) else None

    gaps = st.read("coverage_gaps") if st.has("coverage_gaps") else None
    return county_summary(p, grids, code=s.project.county_code, name=s.project.name, settings=s,
                          as_of=problems.report_date(project, as_of), period=period, streets=opt("streets"),
                          alleys=opt("alleys"), gaps=gaps, boundary=opt("boundary"), kinds=tuple(s.facilities))


def _failed(spec: CountySpec, exc: BaseException) -> CountyRun:
    from sanigrid.layers._errors import SanigridError

    msg = str(exc) if isinstance(exc, SanigridError) else "".join(
        traceback.format_exception_only(type(exc), exc)).strip()
    return CountyRun(spec, error=msg or type(exc).__name__)


@contextmanager
def dask_client(*, scheduler: str | None = None, workers: int = 2, threads: int = 1) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler``, else of a LocalCluster of ``workers``
    processes with ``threads`` threads each, listening on 127.0.0.1 only, without a dashboard."""
    import dask
    from distributed import Client, LocalCluster  # imported first: its defaults are then in dask.config

    quiet = logging.getLogger("distributed")  # its INFO lines (scheduler, nannies) are not the user's progress
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if scheduler:
            with Client(scheduler) as client:
                yield client
            return
        # the scheduler's own HTTP routes (health, metrics; no dashboard) on a free port of 127.0.0.1; the
        # workers without distributed's statistical profiler (it samples every thread's stack each 10 ms,
        # holding the GIL: a few % of a county's pure-Python time, measured)
        no_profiler = dask.config.set({"distributed.worker.profile.enabled": False})
        with no_profiler, LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                       host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None,
                                       silence_logs=logging.ERROR,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
                Client(cluster) as client:
            yield client
    finally:
        quiet.setLevel(level)


def county_task(spec: CountySpec, *, as_of: datetime | None = None, period: str = "month") -> CountyRun:
    """:func:`run_county`, with its error returned as a failed :class:`CountyRun` (the task succeeds, so the
    worker logs no traceback; the error is the county's, reported by the province)."""
    try:
        return run_county(spec, as_of=as_of, period=period)
    except Exception as e:  # a county that fails is reported; the others go on
        return _failed(spec, e)


def run_counties(specs: list[CountySpec], *, client: Any, as_of: datetime | None = None, period: str = "month",
                 on_done: Callable[[CountyRun], None] | None = None) -> list[CountyRun]:
    """Run :func:`run_county` for every county on ``client``'s cluster, in parallel; a county that
    fails is returned with its error and the others go on. ``on_done`` is called as each finishes."""
    from distributed import as_completed

    futures = {client.submit(county_task, spec, as_of=as_of, period=period, pure=False,
                             key=f"county-{i}-{spec.label}"): spec for i, spec in enumerate(specs)}
    runs: list[CountyRun] = []
    for fut in as_completed(list(futures)):
        spec = futures[fut]
        if fut.status == "error":  # the task itself died (a worker lost, an unpicklable result)
            run = _failed(spec, fut.exception())
        else:
            run = fut.result()
        fut.release()
        runs.append(run)
        if on_done:
            on_done(run)
    order = {s: i for i, s in enumerate(specs)}
    return sorted(runs, key=lambda r: order[r.spec])


def run_serial(specs: list[CountySpec], *, as_of: datetime | None = None, period: str = "month",
               on_done: Callable[[CountyRun], None] | None = None) -> list[CountyRun]:
    """The same as :func:`run_counties`, one county after the other in this process (the baseline)."""
    runs = []
    for spec in specs:
        run = county_task(spec, as_of=as_of, period=period)
        runs.append(run)
        if on_done:
            on_done(run)
    return runs


@dataclass
class ProvinceReport:
    """The ranked counties and the files written."""

    ranked: gpd.GeoDataFrame
    runs: list[CountyRun]
    files: dict[str, Path]


def write_province(runs: list[CountyRun], out: Path, *, paper: str = "A3") -> ProvinceReport:
    """Rank the counties that ran and write the table, the map layers and the printed map to ``out``."""
    import geopandas as gpd
    import pandas as pd

    from sanigrid.geo.province import ZH, province_table, rank_counties
    from sanigrid.layers.export import params_table
    from sanigrid.layers.settings import Settings
    from sanigrid.layers.workbook import write_xlsx

    runs = _refuse_shared_codes(runs)
    ok = [r for r in runs if r.ok and r.row is not None]
    rows = [r.row for r in ok if r.row is not None]
    if not rows:
        raise AnalysisError("every county failed: " + "; ".join(f"{r.spec.label}: {r.error}" for r in runs))
    rows = [r.to_crs(rows[0].crs) for r in rows]
    settings = Settings()  # the province's own thresholds: the defaults (weights, prior strength)
    ranked = rank_counties(gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), crs=rows[0].crs),
                           settings=settings)
    kinds = [c.removeprefix("coverage_") for c in ranked.columns if c.startswith("coverage_")]
    titles = {k: settings.facility_title(k) for k in kinds}
    out.mkdir(parents=True, exist_ok=True)
    start, end = pd.Timestamp(ranked["period_start"].iloc[0]), pd.Timestamp(ranked["period_end"].iloc[0])
    files: dict[str, Path] = {}
    last = end - pd.Timedelta(seconds=1)  # the period ends before ``end``, as in the file's name and the map
    note = params_table({"统计期": f"{start:%Y-%m-%d} 至 {last:%Y-%m-%d} (截至 {end:%Y-%m-%d %H:%M})",
                         "县数": len(ranked),
                         "失败": len(runs) - len(ok),
                         "收缩方法": "经验贝叶斯: 比率用贝塔-二项, 每公里问题数用伽马-泊松, 向全省均值收缩",
                         "先验强度": settings.scorecard.prior_strength, "区间": "90%",
                         "权重": "、".join(f"{k}={v}" for k, v in settings.scorecard.weights.items())})
    sheets = {RANKING_LAYER: province_table(ranked, titles=titles), "说明": note}
    failed = [r for r in runs if not r.ok]
    if failed:
        sheets[_FAILED] = pd.DataFrame({ZH["code"]: [r.spec.label for r in failed],
                                        ZH["failed"]: [r.error for r in failed]})
    files["xlsx"] = out / f"{RANKING_LAYER}_{start:%Y%m%d}-{last:%Y%m%d}.xlsx"
    write_xlsx(sheets, files["xlsx"], headers=ZH)
    layer = ranked.copy()
    for c in ("period_start", "period_end"):
        layer[c] = layer[c].astype(str)
    layer = layer[[c for c in layer.columns if not c.startswith(("s_", "prev_")) or c in ("prev_rank", "prev_score")]]
    files["gpkg"] = _replace(out / f"{RANKING_LAYER}.gpkg", lambda p: layer.to_file(p, layer="county_ranking",
                                                                                  driver="GPKG"))
    files["parquet"] = _replace(out / f"{RANKING_LAYER}.parquet", lambda p: layer.to_parquet(p))
    files["map"] = _replace(out / f"{RANKING_LAYER}_{paper}.pdf", lambda p: _print_map(ranked, p, paper=paper,
                                                                                   start=start, end=end))
    return ProvinceReport(ranked=ranked, runs=runs, files=files)


def _refuse_shared_codes(runs: list[CountyRun]) -> list[CountyRun]:
    """Counties that ran under one county code (e.g. PostGIS schemas started from one settings file)
    cannot be told apart in the ranking: each of them is reported as failed, with what to fix."""
    by_code: dict[str, list[CountyRun]] = {}
    for r in runs:
        if r.ok:
            by_code.setdefault(r.code, []).append(r)
    out = []
    for r in runs:
        twins = [t.spec.label for t in by_code.get(r.code, []) if t is not r] if r.ok else []
        if twins:
            r = CountyRun(r.spec, code=r.code, name=r.name, seconds=r.seconds, peak_rss_mb=r.peak_rss_mb,
                          steps=r.steps, error=f"县级代码 {r.code} 与 {'、'.join(twins)} 相同: county code {r.code} is "
                          f"also that of {', '.join(twins)}; set [project] county_code (and name) in each "
                          "county's settings")
        out.append(r)
    return out


def _replace(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file renamed over ``path``: a failed write never replaces a good file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _print_map(ranked: gpd.GeoDataFrame, path: Path, *, paper: str, start: Any, end: Any) -> None:
    import pandas as pd

    from sanigrid.web.printmap import render_map

    shown = ranked.assign(label=[f"{r}. {n}" for r, n in zip(ranked["rank"], ranked["name"], strict=True)])
    last = pd.Timestamp(end) - pd.Timedelta(seconds=1)  # the period ends before ``end``
    render_map({"scorecard": shown}, path_or_buffer=path, fmt="pdf", paper=paper, title="县级排名",
               subtitle=f"排名 1 为最好 · 统计期 {start:%Y-%m-%d} 至 {last:%Y-%m-%d} · {len(ranked)} 个县",
               legend_titles={"scorecard": "县级排名"}, labels={"scorecard": "label"})


def run_province(specs: list[CountySpec], out: Path, *, scheduler: str | None = None, workers: int = 2,
                 as_of: datetime | None = None, period: str = "month",
                 on_done: Callable[[CountyRun], None] | None = None) -> ProvinceReport:
    """Every county on a Dask cluster (:func:`dask_client`), then the province's table and map."""
    with dask_client(scheduler=scheduler, workers=workers) as client:
        runs = run_counties(specs, client=client, as_of=as_of, period=period, on_done=on_done)
    return write_province(runs, out)


# ------------------------------------------------------------------ command
@app.command()
def province(
    counties: Annotated[list[str], typer.Argument(help="county project folders (or a folder of them); "
                                                       "with --store-url: PostGIS schemas")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the province's table and map")],
    scheduler: Annotated[str | None, typer.Option(help="address of a running Dask scheduler "
                                                       "(default: a LocalCluster on this machine)")] = None,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes")] = 2,
    store_url: Annotated[str | None, typer.Option(help="PostGIS store shared by the counties (one schema each)")]
    = None,
    settings: Annotated[Path | None, typer.Option(help="各县 (PostGIS) 的设置: 共用的文件, 或每县一个 <schema>.toml "
                                                      "的文件夹 / settings file for PostGIS counties without "
                                                      "their own, or a folder of <schema>.toml, one per county")]
    = None,
    period: Annotated[str, typer.Option(help="month, week or quarter")] = "month",
    as_of: Annotated[str | None, typer.Option("--as-of", help="date of the report (default: each county's)")] = None,
) -> None:
    """全省(市)各县并行分析与县级排名 / every county's analyses on Dask, then the county ranking and map."""
    from sanigrid.scripts.problems import _date

    if workers < 1:
        raise typer.BadParameter("--workers is at least 1")
    specs = county_specs(counties, store_url=store_url, out=out, settings=str(settings.resolve()) if settings else None)
    where = f"调度器 {scheduler}" if scheduler else f"本机集群 {workers} 个工作进程 (127.0.0.1)"
    console.print(f"{len(specs)} 个县 · Dask {where}", highlight=False)
    finished = []

    def done(run: CountyRun) -> None:
        finished.append(run)
        n = f"[{len(finished)}/{len(specs)}]"
        if run.ok:
            console.print(f"  {n} ✓ {run.code} {run.name}  完成 · 用时 {run.seconds:.1f} 秒 · "
                          f"内存峰值 {run.peak_rss_mb:.0f} MB", highlight=False)
        else:
            console.print(f"  {n} [bold red]✗ {run.spec.label} 失败[/]: {run.error}", highlight=False)

    rep = run_province(specs, out, scheduler=scheduler, workers=workers, as_of=_date(as_of, "as-of"), period=period,
                       on_done=done)
    bad = [r for r in rep.runs if not r.ok]
    failed = f", [red]{len(bad)} 个县失败 (见 {_FAILED} 表)[/]" if bad else ""
    console.print(f"县级排名: {len(rep.ranked)} 个县{failed}", highlight=False)
    for r in rep.ranked.head(10).itertuples():
        console.print(f"  第 {r.rank:>2} 名  {r.code} {r.name}  综合得分 {r.score:.1f}", highlight=False)
    if len(rep.ranked) > 10:
        console.print(f"  … 共 {len(rep.ranked)} 个县, 见排名表", highlight=False)
    for kind, path in rep.files.items():
        console.print(f"{_FILES[kind]} → {path}", highlight=False)
    if bad:
        raise typer.Exit(1)


_FILES = {"xlsx": "排名表", "gpkg": "排名图层 (GeoPackage)", "parquet": "排名图层 (GeoParquet)", "map": "A3 排名图"}


@app.command("province-demo")
def province_demo(
    folder: Annotated[Path, typer.Argument(help="folder for the county projects (one subfolder per county)")],
    counties: Annotated[int, typer.Option(help="how many counties")] = 5,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same province)")] = 2026,
) -> None:
    """生成合成省(市)的各县项目 / write synthetic county projects for trying `sanigrid province`."""
    from sanigrid.scripts.demo.province import make_province

    if counties < 1:
        raise typer.BadParameter("--counties is at least 1")
    for p in make_province(folder, counties, seed=seed):
        console.print(f"  {p.settings.project.county_code} {p.settings.project.name} → {p.root}")
    console.print(f"然后 then: sanigrid province {folder} --out {folder}/省级输出", highlight=False)
