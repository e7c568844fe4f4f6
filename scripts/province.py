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
    and outputs live in ``out/<schema>/``.
    """
    from sanigrid.layers.settings import SETTINGS_NAME

    specs: list[CountySpec] = []
    for p in paths:
        if store_url:
            specs.append(CountySpec(str(((out or Path(".")) / p).resolve()), store_url=store_url, schema=p,
                                    settings=settings))
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
    from sanigrid.geo.province import county_summary
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
        st = project.store
        p, grids, _ = problems.load_problems(project)

        def opt(kind: str) -> gpd.GeoDataFrame | None:
            f = st.read(kind) if st.has(kind) else None
            return f if f is not None and len(f) else None

        gaps = st.read("coverage_gaps") if st.has("coverage_gaps") else None
        row = county_summary(p, grids, code=s.project.county_code, name=s.project.name, settings=s,
                             as_of=problems.report_date(project, as_of), period=period, streets=opt("streets"),
                             alleys=opt("alleys"), gaps=gaps, boundary=opt("boundary"), kinds=tuple(s.facilities))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    return CountyRun(spec, code=s.project.county_code, name=s.project.name, row=row,
                     seconds=time.perf_counter() - t0, peak_rss_mb=peak, steps=steps)


def _failed(spec: CountySpec, exc: BaseException) -> CountyRun:
    from sanigrid.layers._errors import SanigridError

    msg = str(exc) if isinstance(exc, SanigridError) else "".join(
        traceback.format_exception_only(type(exc), exc)).strip()
    return CountyRun(spec, error=msg or type(exc).__name__)


@contextmanager
def dask_client(*, scheduler: str | None = None, workers: int = 2, threads: int = 1) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler``, else of a LocalCluster of ``workers``
    processes with ``threads`` threads each, listening on 127.0.0.1 only, without a dashboard."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
                      dashboard_address=None, worker_dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_counties(specs: list[CountySpec], *, client: Any, as_of: datetime | None = None, period: str = "month",
                 on_done: Callable[[CountyRun], None] | None = None) -> list[CountyRun]:
    """Run :func:`run_county` for every county on ``client``'s cluster, in parallel; a county that
    fails is returned with its error and the others go on. ``on_done`` is called as each finishes."""
    from distributed import as_completed

    futures = {client.submit(run_county, spec, as_of=as_of, period=period, pure=False,
                             key=f"county-{i}-{spec.label}"): spec for i, spec in enumerate(specs)}
    runs: list[CountyRun] = []
    for fut in as_completed(list(futures)):
        spec = futures[fut]
        if fut.status == "error":
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
        try:
            run = run_county(spec, as_of=as_of, period=period)
        except Exception as e:  # a county that fails is reported; the others go on
            run = _failed(spec, e)
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
    note = params_table({"统计期": f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d %H:%M}", "县数": len(ranked),
                         "失败": len(runs) - len(ok),
                         "收缩方法": "经验贝叶斯: 比率用贝塔-二项, 每公里问题数用伽马-泊松, 向全省均值收缩",
                         "先验强度": settings.scorecard.prior_strength, "区间": "90%",
                         "权重": "、".join(f"{k}={v}" for k, v in settings.scorecard.weights.items())})
    sheets = {RANKING_LAYER: province_table(ranked, titles=titles), "说明": note}
    failed = [r for r in runs if not r.ok]
    if failed:
        sheets[_FAILED] = pd.DataFrame({ZH["code"]: [r.spec.label for r in failed],
                                        ZH["failed"]: [r.error for r in failed]})
    files["xlsx"] = out / f"{RANKING_LAYER}_{start:%Y%m%d}-{(end - pd.Timedelta(seconds=1)):%Y%m%d}.xlsx"
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
    from sanigrid.web.printmap import render_map

    render_map({"scorecard": ranked}, path_or_buffer=path, fmt="pdf", paper=paper, title="县级排名",
               subtitle=f"排名 1 为最好 · 统计期 {start:%Y-%m-%d} 至 {end:%Y-%m-%d}",
               legend_titles={"scorecard": "县级排名"}, labels={"scorecard": "name"})


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
    settings: Annotated[Path | None, typer.Option(help="settings file for PostGIS counties without their own")]
    = None,
    period: Annotated[str, typer.Option(help="month, week or quarter")] = "month",
    as_of: Annotated[str | None, typer.Option("--as-of", help="date of the report (default: each county's)")] = None,
) -> None:
    """全省(市)各县并行分析与县级排名 / every county's analyses on Dask, then the county ranking and map."""
    from sanigrid.scripts.problems import _date

    if workers < 1:
        raise typer.BadParameter("--workers is at least 1")
    specs = county_specs(counties, store_url=store_url, out=out, settings=str(settings.resolve()) if settings else None)
    where = scheduler or f"LocalCluster {workers} workers (127.0.0.1)"
    console.print(f"{len(specs)} 个县 counties · Dask {where}")

    def done(run: CountyRun) -> None:
        if run.ok:
            console.print(f"  ✓ {run.code} {run.name}  [dim]{run.seconds:.1f} s, {run.peak_rss_mb:.0f} MB[/]")
        else:
            console.print(f"  [bold red]✗ {run.spec.label}[/]: {run.error}", highlight=False)

    rep = run_province(specs, out, scheduler=scheduler, workers=workers, as_of=_date(as_of, "as-of"), period=period,
                       on_done=done)
    bad = [r for r in rep.runs if not r.ok]
    console.print(f"县级排名 {len(rep.ranked)} 个县" + (f", [red]{len(bad)} 个失败[/]" if bad else ""))
    for r in rep.ranked.head(10).itertuples():
        console.print(f"  {r.rank:>3}  {r.code} {r.name}  {r.score:.1f}")
    for kind, path in rep.files.items():
        console.print(f"{kind} → {path}")
    if bad:
        raise typer.Exit(1)


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
    console.print(f"then: sanigrid province {folder} --out {folder}/省级输出")
