"""`sanigrid sample` and `sanigrid mock-check`: sample points for the technical evaluation.

:func:`run_sample` and :func:`run_mock_check` do the work (read layers, call :mod:`geo.sampling`, write
layers and exports); the commands only parse options and print a summary. The demo calls the functions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanigrid.geo._errors import AnalysisError
from sanigrid.layers.cases import store_as_of
from sanigrid.scripts._app import DEFAULT_PROJECT, ProjectOpt, app, console, load

if TYPE_CHECKING:  # the analyses and their libraries are imported by the functions that run them
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from sanigrid.geo import sampling
    from sanigrid.layers.project import Project

log = logging.getLogger(__name__)

SOURCE_KINDS = ("sample_points", "markets", "alleys", "toilets", "transfer_stations", "streets")
#: layers readiness reads when they exist; without them it gives fewer reasons
EVIDENCE_KINDS = ("problems", "rebounds", "coverage_gaps")
LIST_FILE = "样本点清单.xlsx"
RISK_FILE = "模拟抽查风险表.xlsx"
_HEADERS = {
    "quota": "配额", "picked": "已选", "shortfall": "缺口", "candidates": "候选点数",
    "ready_candidates": "达标候选点数", "strata": "片区数", "strata_covered": "覆盖片区数",
    "not_ready_picked": "入选未达标数", "reason": "说明", "note": "备注", "places": "场所数",
    "failing": "不达标数", "drawn": "每次抽查数", "p_fail": "至少一处不合格概率(模拟)",
    "p_fail_se": "标准误", "p_fail_exact": "至少一处不合格概率(精确)", "expected_loss": "期望扣分(模拟)",
    "expected_loss_exact": "期望扣分(精确)", "order": "整改顺序", "risk_before": "整改前该类风险",
    "risk_after": "整改后该类风险", "risk_drop": "风险下降", "loss_drop": "期望扣分下降",
    "total_risk_after": "整改后总风险", "mode": "抽样方式", "mean_readiness": "平均准备度",
    "share_ready": "达标占比", "min_spacing": "最小间距(米)", "n_open": "周边未结问题数",
    "n_overdue": "周边逾期问题数", "n_rebounds": "周边反弹数", "ready": "达标",
}


@dataclass
class SampleRun:
    """What :func:`run_sample` made."""

    candidates: gpd.GeoDataFrame
    selection: sampling.Selection
    comparison: pd.DataFrame
    missing: list[str]
    as_of: datetime
    files: list[Path] = field(default_factory=list)


@dataclass
class MockCheckRun:
    """What :func:`run_mock_check` made."""

    result: sampling.MockCheck
    seconds: float
    missing: list[str]
    files: list[Path] = field(default_factory=list)


def _read(project: Project, kind: str) -> gpd.GeoDataFrame | None:
    return project.store.read(kind) if project.store.has(kind) else None


def build_candidates(project: Project, *, as_of: datetime | None = None) -> tuple[gpd.GeoDataFrame, list[str],
                                                                                   datetime]:
    """Candidates with readiness from the store; also the evidence layers that were missing and ``as_of``
    (computed once per `sanigrid analyse` run for `sample` and `mock-check`: :func:`scripts._memo.shared`)."""
    from sanigrid.scripts._memo import shared

    return shared(project, ("sample_candidates", as_of), lambda: _build_candidates(project, as_of=as_of))


def _build_candidates(project: Project, *, as_of: datetime | None) -> tuple[gpd.GeoDataFrame, list[str], datetime]:
    from sanigrid.geo import sampling
    from sanigrid.layers.catalogue import FACILITY_KINDS
    from sanigrid.layers.projects import built

    # a facility not built yet (规划/在建) or closed (停用) is no place to inspect
    layers = {k: built(f) if k in FACILITY_KINDS and f is not None else f
              for k, f in ((k, _read(project, k)) for k in SOURCE_KINDS)}
    grids = _read(project, "grids")
    evidence = {k: _read(project, k) for k in EVIDENCE_KINDS}
    missing = [k for k in ("grids", *EVIDENCE_KINDS) if (evidence.get(k) if k != "grids" else grids) is None]
    if missing:
        log.info("sampling: layer(s) %s not in the store; readiness uses fewer reasons", ", ".join(missing))
    problems = evidence["problems"]
    as_of = store_as_of(project.store, given=as_of, settings=project.settings)
    cands = sampling.candidates(layers, grids=grids, settings=project.settings)
    if not len(cands):
        raise AnalysisError(
            f"{project.root}: no sample candidates: import sample_points or the facility layers (markets, "
            "alleys, toilets, transfer_stations, streets) first, e.g. `sanigrid demo`")
    cands = sampling.readiness(cands, settings=project.settings, as_of=as_of, problems=problems,
                               rebounds=evidence["rebounds"], coverage_gaps=evidence["coverage_gaps"],
                               streets=layers["streets"], markets=layers["markets"],
                               evidence=archive_evidence(project, cands, as_of=as_of))
    return cands, missing, as_of


def archive_evidence(project: Project, cands: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame | None:
    """The missing and expired archive documents of each candidate, or ``None`` when the project has no
    archive registry yet (`sanigrid archive` was never run and nothing was uploaded): a county that does
    not keep its archive in sanigrid is not marked down for it."""
    from sanigrid.geo import archive
    from sanigrid.layers.archive import read_registry

    files = read_registry(project.store)
    if files is None:
        return None
    table = archive.completeness(files, cands, settings=project.settings, as_of=as_of)
    return archive.place_evidence(table)


def _as_layer(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Point geometry and the catalogue columns plus the problem counts (readiness attributes dropped)."""
    from sanigrid.geo import sampling

    out = frame.drop(columns=[c for c in sampling._ATTRS if c in frame])
    out = out.set_geometry(out.geometry.representative_point())
    return out


def _min_spacing(xy: np.ndarray) -> float:
    """The smallest distance between two of the points ``xy`` (n × 2), NaN for fewer than two."""
    import numpy as np

    if len(xy) < 2:
        return float("nan")
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def compare(stratified: sampling.Selection, random: sampling.Selection) -> pd.DataFrame:
    """Per category and mode: mean readiness, share ready, strata covered, smallest spacing of the picks.

    The picks' columns are taken out once per mode and each category's part is a mask of them (a filtered
    GeoDataFrame per category cost ~1 ms); means are those of pandas Series, as before."""
    import numpy as np
    import pandas as pd

    rows = []
    for mode, sel in (("分层", stratified), ("随机", random)):
        rep = sel.report.set_index("category")
        picks = sel.picks
        cats = picks["category"].to_numpy()
        readiness, ready = picks["readiness"].to_numpy(), picks["ready"].to_numpy()
        xy = np.column_stack([picks.geometry.x.to_numpy(), picks.geometry.y.to_numpy()])
        for cat in rep.index:
            m = cats == cat
            n = int(m.sum())
            rows.append({"category": cat, "mode": mode, "picked": n,
                         "mean_readiness": round(float(pd.Series(readiness[m]).mean()), 1) if n else float("nan"),
                         "share_ready": round(float(pd.Series(ready[m]).mean()), 3) if n else float("nan"),
                         "strata_covered": int(rep.loc[cat, "strata_covered"]),
                         "strata": int(rep.loc[cat, "strata"]),
                         "min_spacing": round(_min_spacing(xy[m]), 0)})
    return pd.DataFrame(rows).sort_values(["category", "mode"], kind="stable").reset_index(drop=True)


def run_sample(project: Project, *, seed: int | None = None, random_mode: bool = False,
               as_of: datetime | None = None, maps: bool = False) -> SampleRun:
    """Build candidates with readiness, select the sample points, write layers, the list and the maps.

    Writes the layers ``sample_candidates`` and ``sample_selection`` and the table ``sample_quota_report``
    in one transaction, ``outputs/样本点清单.xlsx`` and (``maps``) one A4 PNG per category with a quota
    and candidates, ``outputs/样本点图_<类别>.png``. ``random_mode`` stores the strictly random picks instead of the
    stratified ones (the other mode is always computed for the comparison sheet).
    """
    from sanigrid.geo import sampling
    from sanigrid.layers.export import zh_headers
    from sanigrid.layers.workbook import StagedWorkbook

    s = project.settings
    sc = s.sampling
    seed = sc.seed if seed is None else int(seed)
    cands, missing, as_of = build_candidates(project, as_of=as_of)
    quotas = sc.quotas_for(s.project.population)
    strat, rand = (sampling.select(cands, quotas=quotas, seed=seed, min_spacing_m=sc.min_spacing_m,
                                   pass_score=sc.pass_score, random_mode=mode) for mode in (False, True))
    chosen = rand if random_mode else strat
    params = {"seed": seed, "mode": "随机" if random_mode else "分层", "as_of": as_of.isoformat(),
              "population_class": sc.population_class(s.project.population), "quotas": quotas,
              "min_spacing_m": sc.min_spacing_m, "pass_score": sc.pass_score, "radius_m": sc.radius_m,
              "missing_inputs": missing, "quota_source": sc.quota_source}
    cand_layer = _as_layer(cands)
    sel_layer = _as_layer(chosen.picks)
    comparison = compare(strat, rand)
    run = SampleRun(cands, chosen, comparison, missing, as_of)
    headers = zh_headers("sample_selection", _HEADERS)
    list_cols = ["category", "pick", "name", "grid_code", "street_office", "community", "address", "readiness",
                 "reasons", "reason", "mode", "geometry"]
    cand_cols = ["candidate_id", "category", "name", "grid_code", "street_office", "community", "address",
                 "readiness", "ready", "reasons", "n_open", "n_overdue", "n_rebounds", "geometry"]
    path = project.output_path(LIST_FILE)
    # report to a temporary file, store, then the report published: a failed report leaves the store as it was
    with StagedWorkbook({"样本点清单": sel_layer[list_cols], "配额与缺口": chosen.report, "分层与随机对比": comparison,
                         "候选点": cand_layer[cand_cols]}, path, headers=headers), \
            project.store.transaction() as tx:
        tx.write("sample_candidates", cand_layer, params=params)
        tx.write("sample_selection", sel_layer, params=params)
        tx.write_table("sample_quota_report", chosen.report)
    run.files.append(path)
    if maps:
        run.files += _maps(project, cand_layer[cand_layer["category"].isin([c for c, q in quotas.items() if q > 0])],
                           sel_layer, seed=seed, as_of=as_of)
    return run


def run_sample_maps(project: Project) -> list[Path]:
    """The printable A4 maps of the stored sample (what `sanigrid sample --maps` draws), from the layers
    ``sample_candidates`` and ``sample_selection`` and the settings they were made with; nothing is
    selected again. ``sanigrid analyse --prints`` (and the demo) draw them as a step of their own."""
    st = project.store
    if not (st.has("sample_selection") and st.has("sample_candidates")):
        raise AnalysisError(f"{st.location}: no sample yet (layers sample_candidates, sample_selection); "
                            "run `sanigrid sample` first")
    params = st.meta("sample_selection").get("params", {})
    quotas = params.get("quotas") or {}
    cands = st.read("sample_candidates")
    return _maps(project, cands[cands["category"].isin([c for c, q in quotas.items() if q > 0])],
                 st.read("sample_selection"), seed=int(params["seed"]), as_of=datetime.fromisoformat(params["as_of"]))


def _maps(project: Project, cands: gpd.GeoDataFrame, picks: gpd.GeoDataFrame, *, seed: int,
          as_of: datetime) -> list[Path]:
    """One printable A4 map per category with candidates: grids and streets for context."""
    from sanigrid.layers.importers import map_attribution
    from sanigrid.web.printmap import render_map

    context = {k: v for k in ("grids", "streets") if (v := _read(project, k)) is not None}
    s = project.settings
    files = []
    for cat in sorted(set(cands["category"])):
        c = cands[cands["category"] == cat]
        p = picks[picks["category"] == cat]
        path = project.output_path(f"样本点图_{cat}.png")
        render_map({**context, "sample_candidates": c, "sample_selection": p},
                   title=f"{s.project.name} 技术评估样本点 · {cat}",
                   subtitle=(f"选定{len(p)}处 / 候选{len(c)}处 (达标{int(c['ready'].sum())}处); "
                             f"种子 {seed}; 问题统计截至 {as_of:%Y-%m-%d}"),
                   attribution=map_attribution(project, [*context, "sample_candidates"]), path_or_buffer=path,
                   paper="A4", dpi=150,
                   labels={"sample_selection": "pick"}, map_date=date.today(),
                   legend_titles={"sample_candidates": "候选点", "sample_selection": "选定样本点(编号)"})
        files.append(path)
    return files


def run_mock_check(project: Project, *, draws: int | None = None, seed: int | None = None,
                   as_of: datetime | None = None) -> MockCheckRun:
    """Simulate the inspectors' random spot-checks; write the risk table (xlsx and store tables)."""
    from sanigrid.geo import sampling
    from sanigrid.layers.export import zh_headers
    from sanigrid.layers.workbook import StagedWorkbook

    cands, missing, _ = build_candidates(project, as_of=as_of)
    t0 = time.perf_counter()
    result = sampling.mock_check(cands, settings=project.settings, draws=draws, seed=seed)
    seconds = time.perf_counter() - t0
    path = project.output_path(RISK_FILE)
    with StagedWorkbook({"抽查风险": result.risk, "整改优先顺序": result.repairs}, path,
                        headers=zh_headers("sample_candidates", _HEADERS)), project.store.transaction() as tx:
        tx.write_table("sample_risk", result.risk)
        tx.write_table("sample_repairs", result.repairs)
    return MockCheckRun(result, seconds, missing, [path])


def _say_missing(missing: list[str]) -> None:
    if missing:
        console.print(f"[yellow]注意:[/] 库中没有 {', '.join(missing)} 图层, 准备度只用了其余依据 "
                      "(readiness uses fewer reasons)")


@app.command()
def sample(
    project: ProjectOpt = DEFAULT_PROJECT,
    seed: Annotated[int | None, typer.Option(help="random seed (default: settings sampling.seed)")] = None,
    random: Annotated[bool, typer.Option("--random", help="strictly random picks (as an inspector draws)")] = False,
    maps: Annotated[bool, typer.Option(help="also draw one printable A4 map per category (PNG)")] = False,
    as_of: Annotated[datetime | None, typer.Option(help="count problems open/overdue at this date "
                                                        "(default: now, or the day after the last report)")] = None,
) -> None:
    """Select sample points (样本点) per category: readiness, stratified and spaced picks, shortfalls.

    Writes the layers sample_candidates and sample_selection and outputs/样本点清单.xlsx. The printable A4
    maps (one PNG per category, once drawn by every run) only with --maps, or later from the stored
    sample: sanigrid analyse --only "sample maps" --prints."""
    run = run_sample(load(project), seed=seed, random_mode=random, maps=maps, as_of=as_of)
    _say_missing(run.missing)
    t = Table(title=f"样本点 sample points ({'随机' if random else '分层'})")
    for col in ("类别", "配额", "已选", "缺口", "候选/达标", "覆盖片区", "说明"):
        t.add_column(col)
    for r in run.selection.report.itertuples():
        t.add_row(r.category, str(r.quota), str(r.picked), str(r.shortfall) if r.shortfall else "",
                  f"{r.candidates}/{r.ready_candidates}", f"{r.strata_covered}/{r.strata}",
                  "; ".join(x for x in (r.reason, r.note) if x))
    console.print(t)
    for f in run.files:
        console.print(f"  → {f}", soft_wrap=True, highlight=False)


@app.command("mock-check")
def mock_check(
    project: ProjectOpt = DEFAULT_PROJECT,
    draws: Annotated[int | None, typer.Option(help="simulated inspections (default: settings sampling.draws)")]
    = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    as_of: Annotated[datetime | None, typer.Option(help="count problems open/overdue at this date")] = None,
) -> None:
    """Simulate random spot-checks (模拟技术评估): failure risk per category and what to repair first."""
    run = run_mock_check(load(project), draws=draws, seed=seed, as_of=as_of)
    _say_missing(run.missing)
    t = Table(title=f"模拟抽查 mock spot-check ({run.seconds * 1000:.0f} ms)")
    for col in ("类别", "场所", "不达标", "抽查数", "不合格概率(模拟)", "精确值", "期望扣分"):
        t.add_column(col)
    for r in run.result.risk.itertuples():
        t.add_row(r.category, str(r.places), str(r.failing), str(r.drawn), f"{r.p_fail:.3f} ± {r.p_fail_se:.3f}",
                  f"{r.p_fail_exact:.3f}", f"{r.expected_loss:.2f}")
    console.print(t)
    rep = run.result.repairs.head(10)
    if len(rep):
        console.print("先整改 repair first:")
        for r in rep.itertuples():
            console.print(f"  {r.order}. [{r.category}] {r.name} ({r.grid_code}) 风险 −{r.risk_drop:.3f}: {r.reasons}")
    for f in run.files:
        console.print(f"  → {f}", soft_wrap=True, highlight=False)
