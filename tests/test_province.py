"""`sanigrid province`: the command run as a user runs it (its entry point, a LocalCluster of 2 workers) on
generated counties gives each county's store exactly what the single-county commands write, the ranking
of the functions, the failed county listed, the table and the map; PostGIS schemas as counties give the
GeoPackage run's results; the county ranking's shrinkage; the synthetic province.

Cheap set-up: the counties are generated once (small windows of the demo town) and shared; the province's
subprocess runs while this process runs the single-county commands on a copy; one module cluster serves
the PostGIS run (``--scheduler``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import PG_PROBLEM, PG_URL
from geopandas.testing import assert_geodataframe_equal
from openpyxl import load_workbook
from typer.testing import CliRunner

import sanigrid.geo
from sanigrid.geo import scorecard as sc
from sanigrid.geo.province import rank_counties
from sanigrid.layers.project import init_project, open_project
from sanigrid.layers.settings import SETTINGS_NAME, Settings
from sanigrid.scripts.cli import app
from sanigrid.scripts.demo.province import county_code, make_province
from sanigrid.scripts.province import CountyRun, CountySpec, summarise_county, write_province

N = 3
CODES = [county_code(i) for i in range(N)]
#: small windows of the demo town: still > 30 reports each (Gi* cells), a few grids, every facility kind
SMALL = {"n_problems": 1200, "window_m": 1300.0, "spacing_m": 2000.0}


def _commands(project_dir: Path) -> list[list[str]]:
    """The single-county commands a province task stands for, as a user types them."""
    kinds = open_project(project_dir).settings.facilities
    return [["problems"], *[["coverage", k] for k in kinds], ["hotspots"], ["rank"]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated counties, never analysed (copied by each run that needs them)."""
    base = tmp_path_factory.mktemp("province")
    make_province(base / "gen", N, seed=7, **SMALL)
    return base


@dataclass(frozen=True)
class CliRun:
    """A `sanigrid province` subprocess: its status and output, and where it ran."""

    base: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def prov(self) -> Path:
        return self.base / "prov"

    @property
    def alone(self) -> Path:
        return self.base / "alone"

    @property
    def out(self) -> Path:
        return self.base / "out"


@dataclass(frozen=True)
class Runs:
    cli: CliRun
    pg: CliRun | None  # the run on PostGIS schemas (None without a test server)
    schemas: dict[str, str]  # county code → its schema
    scheduler: str


def _sanigrid() -> list[str]:
    """The installed `sanigrid` entry point beside this interpreter (else the module)."""
    exe = Path(sys.executable).with_name("sanigrid")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sanigrid.scripts.cli"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.Popen([*_sanigrid(), "province", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _load_schemas(generated: Path, schemas: dict[str, str], folder: Path) -> None:
    """Each generated county copied into its PostGIS schema, its settings file as ``folder/<schema>.toml``."""
    from sanigrid.layers.postgis import PostGISStore

    folder.mkdir()
    for code, schema in schemas.items():
        src = open_project(generated / "gen" / code)
        with PostGISStore(PG_URL, schema=schema).transaction() as tx:
            tx.set_crs(src.store.crs)  # as `sanigrid init` with the county's CRS would
            for li in src.store.info():
                tx.write(li.kind, src.store.read(li.kind), params=li.params, synthetic=li.synthetic)
            tx.write_table("problem_history", src.store.read_table("problem_history"))
        shutil.copy(generated / "gen" / code / SETTINGS_NAME, folder / f"{schema}.toml")


def _drop_schemas(schemas: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(PG_URL) as con:
        for schema in schemas.values():
            con.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


@pytest.fixture(scope="module")
def runs(generated: Path) -> Iterator[Runs]:
    """The province run as a user runs it, twice at once, while this process builds the oracle:

    * `sanigrid province prov/ --out out/ --workers 2` (a subprocess with its own LocalCluster) on the
      three counties and a fourth without any layer (its problems step fails);
    * with a PostGIS test server, the three counties loaded into schemas and
      `sanigrid province SCHEMA… --store-url URL --settings DIR --scheduler ADDRESS` on this module's
      cluster (one worker);
    * meanwhile, here, each county's single-county commands on a copy of the same three (``alone/``)."""
    from sanigrid.scripts.province import dask_client

    base = generated
    shutil.copytree(base / "gen", base / "prov")
    shutil.copytree(base / "gen", base / "alone")
    init_project(base / "prov" / "broken")
    procs = {"cli": _start([str(base / "prov"), "--out", str(base / "out"), "--workers", "2"])}
    schemas = {code: f"prov_{uuid.uuid4().hex[:8]}_{code}" for code in CODES} if PG_PROBLEM is None else {}
    try:
        with dask_client(workers=1) as client:
            assert all(str(a).startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
            assert list(client.run(_profiling).values()) == [False]  # no statistical profiler in the workers
            scheduler = client.scheduler.address
            if schemas:
                _load_schemas(base, schemas, base / "pg_settings")
                procs["pg"] = _start([*schemas.values(), "--store-url", PG_URL, "--settings",
                                      str(base / "pg_settings"), "--scheduler", scheduler,
                                      "--out", str(base / "out_pg")])
            try:
                runner = CliRunner()
                for code in CODES:
                    for args in _commands(base / "alone" / code):
                        res = runner.invoke(app, [*args, "-p", str(base / "alone" / code)])
                        assert res.exit_code == 0, res.output
            finally:
                done = {k: (p, *p.communicate(timeout=900)) for k, p in procs.items()}
        results = {k: CliRun(base, p.returncode, out, err) for k, (p, out, err) in done.items()}
        yield Runs(results["cli"], results.get("pg"), schemas, scheduler)
    finally:
        if schemas:
            _drop_schemas(schemas)


@pytest.fixture(scope="module")
def cli_run(runs: Runs) -> CliRun:
    return runs.cli


def _params(store, kind: str) -> dict:
    """A layer's parameters without the dates it was written."""

    def strip(d: object) -> object:
        return {k: strip(v) for k, v in d.items() if k != "date"} if isinstance(d, dict) else d

    return strip(store.meta(kind).get("params", {}))  # type: ignore[return-value]


def _same_store(a, b, *, what: str) -> None:
    """Every layer of store ``a`` equals that of ``b`` (rows, geometry, parameters), and the case history."""
    kinds = [i.kind for i in a.info()]
    assert kinds == [i.kind for i in b.info()], what
    for kind in kinds:
        fa, fb = a.read(kind), b.read(kind)
        assert len(fa) == len(fb), (what, kind)
        assert_geodataframe_equal(fa, fb, check_less_precise=True, normalize=True, check_dtype=False)
        assert _params(a, kind) == _params(b, kind), (what, kind)
    pd.testing.assert_frame_equal(a.read_table("problem_history"), b.read_table("problem_history"),
                                  check_dtype=False)


def _xlsx(out: Path) -> Path:
    (path,) = out.glob("县级排名_*.xlsx")
    return path


def _sheet(path: Path, name: str) -> list[tuple]:
    wb = load_workbook(path, read_only=True)
    return list(wb[name].iter_rows(values_only=True))


# ------------------------------------------------------------------ the generator
def test_generated_counties_are_apart_with_their_own_codes(generated: Path) -> None:
    counties = [open_project(generated / "gen" / c) for c in CODES]
    outlines = []
    for code, c in zip(CODES, counties, strict=True):
        assert c.settings.project.county_code == code and code.startswith("36")
        grids = c.store.read("grids")
        assert len(grids) >= 3 and grids["code"].str.startswith(code).all()
        problems = c.store.read("problems")
        assert len(problems) > 30 and problems["grid_code"].dropna().str.startswith(code).all()
        outlines.append(c.store.read("boundary").geometry.iloc[0])
    for a in range(N):
        for b in range(a + 1, N):
            assert not outlines[a].intersects(outlines[b])
    # each county has its own street network (a different window of the town), not one copy shifted
    lengths = [round(c.store.read("streets").length.sum()) for c in counties]
    assert len(set(lengths)) == N


# ------------------------------------------------------------------ the command, as a user runs it
def test_cli_writes_each_county_as_its_single_county_commands(cli_run: CliRun) -> None:
    assert cli_run.returncode == 1, cli_run.stderr  # one county failed: the command says so by its status
    clusters = 0
    for code in CODES:
        a, b = open_project(cli_run.prov / code).store, open_project(cli_run.alone / code).store
        for kind in ("network_components", "service_areas", "coverage_gaps", "gi_cells", "rebounds", "scorecard"):
            assert a.has(kind) and len(a.read(kind)) > 0, (code, kind)
        clusters += len(a.read("hotspot_clusters"))
        _same_store(a, b, what=code)
        outs = sorted(p.name for p in (cli_run.prov / code / "outputs").iterdir())
        assert outs and outs == sorted(p.name for p in (cli_run.alone / code / "outputs").iterdir())
    assert clusters > 0  # some county has hot-spot clusters to compare


def test_cli_ranks_the_counties_as_the_functions_do(cli_run: CliRun) -> None:
    # the functions on the single-county copy: each county's row, then the ranking across them
    rows = [summarise_county(open_project(cli_run.alone / code)) for code in CODES]
    ranked = rank_counties(gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), crs=rows[0].crs),
                           settings=Settings())
    table = _sheet(_xlsx(cli_run.out), "县级排名")
    head, body = table[0], table[1:]
    assert len(body) == N
    assert all(re.fullmatch(r"[^A-Za-z]+", str(h)) for h in head), head  # Chinese headers only
    for zh in ("排名", "县级代码", "县(市、区)", "网格数", "综合得分", "每公里问题数(收缩)", "按期结案率(收缩)(%)",
               "按期结案率下限(%)", "按期结案率上限(%)", "反弹率(收缩)(%)", "名次变化", "得分变化",
               "公厕覆盖率(%)", "垃圾收集点覆盖率(%)", "背街小巷硬化率(%)"):
        assert zh in head, zh
    col = {h: i for i, h in enumerate(head)}
    assert [r[col["县级代码"]] for r in body] == ranked["code"].tolist()
    assert [r[col["排名"]] for r in body] == ranked["rank"].tolist() == sorted(ranked["rank"].tolist())
    np.testing.assert_allclose([r[col["综合得分"]] for r in body], ranked["score"], atol=0.006)
    np.testing.assert_allclose([r[col["按期结案率(收缩)(%)"]] for r in body], 100 * ranked["on_time_rate"],
                               atol=0.06)
    assert [r[col["县(市、区)"]] for r in body] == ranked["name"].tolist()
    assert [r[col["问题数"]] for r in body] == ranked["reports"].tolist()
    # a county's row counts what its own grid ranking counts
    for code in CODES:
        grid_rank = open_project(cli_run.prov / code).store.read("scorecard")
        row = body[[r[col["县级代码"]] for r in body].index(code)]
        assert row[col["问题数"]] == grid_rank["reports"].sum()
        assert row[col["网格数"]] == len(grid_rank)


def test_cli_lists_the_failed_county_and_the_others_finish(cli_run: CliRun) -> None:
    lines = cli_run.stdout.splitlines()
    assert lines[0] == f"{N + 1} 个县 · Dask 本机集群 2 个工作进程 (127.0.0.1)"
    done = [ln.strip() for ln in lines if re.match(r"\s+\[\d/4\] [✓✗]", ln)]
    assert sorted(int(ln[1]) for ln in done) == [1, 2, 3, 4]  # each county once, as it finished
    for code in CODES:
        (ln,) = [ln for ln in done if f"✓ {code} 合成{code}县  完成 · 用时 " in ln]
        assert re.search(r"用时 \d+\.\d 秒 · 内存峰值 \d+ MB$", ln), ln
    (bad,) = [ln for ln in done if "✗" in ln]
    assert "✗ broken 失败: " in bad and "problems" in bad and "empty" in bad
    assert f"县级排名: {N} 个县, 1 个县失败 (见 失败县 表)" in lines
    assert "distributed" not in cli_run.stderr and "Traceback" not in cli_run.stderr, cli_run.stderr
    rows = _sheet(_xlsx(cli_run.out), "失败县")
    assert rows[0] == ("县级代码", "失败原因") and len(rows) == 2
    assert rows[1][0] == "broken" and "empty" in rows[1][1]
    note = dict(_sheet(_xlsx(cli_run.out), "说明")[1:])
    assert note["县数"] in (N, str(N)) and note["失败"] in (1, "1")


def test_cli_writes_the_map_layers_and_the_a3_map(cli_run: CliRun) -> None:
    from pypdf import PdfReader

    order = [r[1] for r in _sheet(_xlsx(cli_run.out), "县级排名")[1:]]
    for f in (gpd.read_file(cli_run.out / "县级排名.gpkg"), gpd.read_parquet(cli_run.out / "县级排名.parquet")):
        assert f["code"].tolist() == order and f["rank"].tolist() == [1, 2, 3]
        assert f.crs.to_epsg() == 4548 and f.geom_type.isin(["Polygon", "MultiPolygon"]).all()
        outline = open_project(cli_run.prov / order[0]).store.read("boundary").geometry.iloc[0]
        assert f.geometry.iloc[0].symmetric_difference(outline).area < 1e-6 * outline.area
    pdf = PdfReader(cli_run.out / "县级排名_A3.pdf")
    assert len(pdf.pages) == 1
    box = pdf.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (420, 297)


def test_the_ranking_workbook_reads_well(cli_run: CliRun) -> None:
    """Opened as a user opens it: every header fits its column, the header row stays in view."""
    wb = load_workbook(_xlsx(cli_run.out))
    ws = wb["县级排名"]
    assert ws.freeze_panes == "A2"
    for cell in ws[1]:
        wide = sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(cell.value))  # a CJK character is two wide
        assert ws.column_dimensions[cell.column_letter].width >= wide, cell.value


def test_counties_sharing_one_code_are_refused(tmp_path: Path) -> None:
    rows = _table({"reports": [10, 12, 8], "closed": [8, 9, 6], "on_time": [7, 8, 5], "overdue": [1, 1, 0],
                   "rebounded": [0, 1, 0], "exposure": [5.0, 6.0, 4.0], "coverage": [0.8, 0.7, 0.9],
                   "hardening_rate": [0.9, 0.8, 0.7],
                   **{f"prev_{c}": [1, 1, 1] for c in ("reports", "closed", "on_time", "overdue", "rebounded")},
                   "prev_exposure": [5.0, 6.0, 4.0]})
    rows["code"] = ["360101", "360101", "360102"]  # two schemas started from one settings file
    runs = [CountyRun(CountySpec(str(tmp_path / s), schema=s), code=c, name=c, row=rows.iloc[[i]])
            for i, (s, c) in enumerate(zip(("a", "b", "c"), rows["code"], strict=True))]
    rep = write_province(runs, tmp_path / "out")
    assert rep.ranked["code"].tolist() == ["360102"]
    failed = {r.spec.label: r.error for r in rep.runs if not r.ok}
    assert sorted(failed) == ["a", "b"] and "360101" in failed["a"] and "b" in failed["a"]
    assert [r[0] for r in _sheet(rep.files["xlsx"], "失败县")[1:]] == ["a", "b"]


# ------------------------------------------------------------------ PostGIS schemas as counties
@pytest.mark.skipif(PG_PROBLEM is not None, reason=PG_PROBLEM or "")
def test_postgis_schemas_as_counties_equal_the_geopackage_run(runs: Runs) -> None:
    from sanigrid.layers.postgis import PostGISStore

    assert runs.pg is not None
    assert runs.pg.returncode == 0, runs.pg.stdout + runs.pg.stderr
    assert runs.pg.stdout.splitlines()[0] == f"{N} 个县 · Dask 调度器 {runs.scheduler}"
    out, prov = runs.pg.base / "out_pg", runs.cli.prov
    for code, schema in runs.schemas.items():
        pg = open_project(out / schema)
        assert isinstance(pg.store, PostGISStore) and pg.store.schema == schema
        assert pg.settings.project.county_code == code
        assert f"✓ {code} 合成{code}县  完成" in runs.pg.stdout
        _same_store(pg.store, open_project(prov / code).store, what=schema)
        outs = sorted(p.name for p in (out / schema / "outputs").iterdir())
        assert outs == sorted(p.name for p in (prov / code / "outputs").iterdir())
    a, b = _sheet(_xlsx(out), "县级排名"), _sheet(_xlsx(runs.cli.out), "县级排名")
    assert a == b  # the same table, cell for cell


def _table(x: dict[str, list[float]]) -> gpd.GeoDataFrame:
    n = len(x["reports"])
    cols = {"code": [f"36010{i}" for i in range(n)], "name": [f"县{i}" for i in range(n)], "grids": [5] * n,
            "period_start": pd.Timestamp("2026-10-01"), "period_end": pd.Timestamp("2026-11-01")}
    for k, v in x.items():
        cols[k] = v
    return gpd.GeoDataFrame(cols, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)], crs=4548)


def test_rank_counties_shrinks_across_counties() -> None:
    s = Settings()
    k = s.scorecard.prior_strength
    base = {"reports": [100, 40, 3], "closed": [80, 30, 2], "on_time": [72, 15, 2], "overdue": [5, 9, 0],
            "rebounded": [4, 6, 0], "exposure": [50.0, 20.0, 1.0], "coverage": [0.9, 0.6, 1.0],
            "hardening_rate": [0.8, 0.5, 0.9]}
    prev = {f"prev_{c}": v for c, v in {"reports": [90, 50, 2], "closed": [70, 40, 1], "on_time": [50, 36, 1],
                                        "overdue": [3, 4, 0], "rebounded": [2, 2, 0],
                                        "exposure": [50.0, 20.0, 1.0]}.items()}
    out = rank_counties(_table({**base, **prev}), settings=s).set_index("code")
    # the beta-binomial shrinkage of geo.scorecard, towards the pooled share of the three counties
    est, lo, hi, pbar = sc.shrink_proportion(np.array([72, 15, 2]), np.array([80, 30, 2]), prior_strength=k)
    np.testing.assert_allclose(out.loc[["360100", "360101", "360102"], "on_time_rate"], est)
    np.testing.assert_allclose(out.loc[["360100", "360101", "360102"], "on_time_lo"], lo)
    assert pbar == pytest.approx(89 / 112)
    # a county with two cases closed on time is not rated 100 %: it is pulled to the province's rate
    assert out.loc["360102", "on_time_rate_raw"] == 1.0
    assert pbar < out.loc["360102", "on_time_rate"] < 0.9
    rate, *_ = sc.shrink_rate(np.array([100, 40, 3]), np.array([50.0, 20.0, 1.0]), prior_strength=k)
    np.testing.assert_allclose(out.loc[["360100", "360101", "360102"], "problems_per_km"], rate)
    # the composite is the grid scorecard's, and rank 1 has the best score
    assert out["rank"].min() == 1 and out.loc[out["score"].idxmax(), "rank"] == 1
    # the change since the previous period: ranked the same way on the previous counts
    pt = rank_counties(_table({**{c: prev[f"prev_{c}"] for c in ("reports", "closed", "on_time", "overdue",
                                                                 "rebounded", "exposure")},
                               "coverage": base["coverage"], "hardening_rate": base["hardening_rate"],
                               **prev}), settings=s).set_index("code").reindex(out.index)
    assert (out["prev_rank"] == pt["rank"]).all()
    assert (out["rank_change"] == pt["rank"] - out["rank"]).all()
    np.testing.assert_allclose(out["score_change"], out["score"] - pt["score"])


def test_siting_has_no_process_wide_redirect(capfd: pytest.CaptureFixture[str]) -> None:
    from scipy import sparse

    from sanigrid.geo.siting import mclp_exact

    rng = np.random.default_rng(1)
    A = sparse.csc_matrix(rng.random((40, 12)) < 0.2)
    res = mclp_exact(A, rng.random(40), 3)
    assert res.objective > 0
    assert capfd.readouterr().out == ""  # HiGHS is silent without touching file descriptor 1
    for f in Path(sanigrid.geo.__file__).parent.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert "dup2" not in text and "sys.stdout" not in text, f.name
