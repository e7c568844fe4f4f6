"""`sanigrid province`: counties on a Dask LocalCluster equal the single-county commands; a failing county
does not stop the others; the county ranking's shrinkage, ranks and files; the synthetic province."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from openpyxl import load_workbook
from typer.testing import CliRunner

import sanigrid.geo
from sanigrid.geo import scorecard as sc
from sanigrid.geo.province import rank_counties
from sanigrid.layers.project import init_project, open_project
from sanigrid.layers.settings import Settings
from sanigrid.scripts.cli import app
from sanigrid.scripts.demo.province import county_code, make_province
from sanigrid.scripts.province import county_specs, dask_client, run_counties, write_province

#: what the analyses write back to a county's store
RESULT_LAYERS = ("network_components", "service_areas", "coverage_gaps", "hotspot_clusters", "gi_cells",
                 "rebounds", "scorecard")
SMALL = {"n_problems": 1200, "window_m": 1300.0, "spacing_m": 2000.0}


@pytest.fixture(scope="module")
def province_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Three generated counties run by the province on a LocalCluster (with a fourth that fails), and a
    copy of the same three run one by one with the single-county commands."""
    base = tmp_path_factory.mktemp("province")
    make_province(base / "prov", 3, seed=7, **SMALL)
    shutil.copytree(base / "prov", base / "alone")
    init_project(base / "prov" / "broken")  # a county without any layer: its problems step fails
    runner = CliRunner()
    for d in sorted((base / "alone").iterdir()):
        for args in (["problems"], *[["coverage", k] for k in open_project(d).settings.facilities],
                     ["hotspots"], ["rank"]):
            res = runner.invoke(app, [*args, "-p", str(d)])
            assert res.exit_code == 0, res.output
    return base / "prov", base / "alone", base / "out"


@pytest.fixture(scope="module")
def province_run(province_dirs: tuple[Path, Path, Path]):
    prov, _, out = province_dirs
    specs = county_specs([str(prov)])
    done = []
    with dask_client(workers=2) as client:
        assert all(str(a).startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
        runs = run_counties(specs, client=client, on_done=done.append)
    return write_province(runs, out), done


def _params(store, kind: str) -> dict:
    """A layer's parameters without the dates it was written."""

    def strip(d: object) -> object:
        return {k: strip(v) for k, v in d.items() if k != "date"} if isinstance(d, dict) else d

    return strip(store.meta(kind).get("params", {}))  # type: ignore[return-value]


def test_generated_counties_are_apart_with_their_own_codes(province_dirs: tuple[Path, Path, Path]) -> None:
    prov, _, _ = province_dirs
    counties = [open_project(prov / county_code(i)) for i in range(3)]
    outlines = []
    for i, c in enumerate(counties):
        code = county_code(i)
        assert c.settings.project.county_code == code and code.startswith("36")
        grids = c.store.read("grids")
        assert len(grids) >= 3 and grids["code"].str.startswith(code).all()
        problems = c.store.read("problems")
        assert len(problems) > 0 and problems["grid_code"].dropna().str.startswith(code).all()
        outlines.append(c.store.read("boundary").geometry.iloc[0])
    for a in range(3):
        for b in range(a + 1, 3):
            assert not outlines[a].intersects(outlines[b])
    # each county has its own street network (a different window of the town), not one copy shifted
    lengths = [round(c.store.read("streets").length.sum()) for c in counties]
    assert len(set(lengths)) == 3


def test_province_gives_the_single_county_layers(province_dirs, province_run) -> None:
    prov, alone, _ = province_dirs
    rep, _ = province_run
    for i in range(3):
        a, b = open_project(prov / county_code(i)).store, open_project(alone / county_code(i)).store
        for kind in RESULT_LAYERS:
            assert a.has(kind) and b.has(kind), kind
            fa, fb = a.read(kind), b.read(kind)
            assert len(fa) == len(fb), kind
            assert_geodataframe_equal(fa, fb, check_less_precise=True, normalize=True)
            assert _params(a, kind) == _params(b, kind), kind
        outs = sorted(p.name for p in (prov / county_code(i) / "outputs").iterdir())
        assert outs == sorted(p.name for p in (alone / county_code(i) / "outputs").iterdir())
    # the county's row counts what its own ranking counts
    for i in range(3):
        grid_rank = open_project(prov / county_code(i)).store.read("scorecard")
        row = rep.ranked.set_index("code").loc[county_code(i)]
        assert row["reports"] == grid_rank["reports"].sum()
        assert row["closed"] == grid_rank["closed"].sum()
        assert row["grids"] == len(grid_rank)


def test_a_failing_county_does_not_stop_the_others(province_run) -> None:
    rep, done = province_run
    assert len(done) == 4
    failed = [r for r in rep.runs if not r.ok]
    assert [r.spec.label for r in failed] == ["broken"]
    assert "problems" in failed[0].error and "empty" in failed[0].error
    assert sorted(rep.ranked["code"]) == [county_code(i) for i in range(3)]
    wb = load_workbook(rep.files["xlsx"], read_only=True)
    assert "失败县" in wb.sheetnames
    rows = list(wb["失败县"].iter_rows(values_only=True))
    assert rows[1][0] == "broken" and "empty" in rows[1][1]


def test_province_files_hold_the_ranking(province_run) -> None:
    rep, _ = province_run
    ranked = rep.ranked
    assert ranked["rank"].tolist() == sorted(ranked["rank"].tolist())
    wb = load_workbook(rep.files["xlsx"], read_only=True)
    rows = list(wb["县级排名"].iter_rows(values_only=True))
    head = rows[0]
    for zh in ("排名", "县级代码", "县(市、区)", "综合得分", "每公里问题数(收缩)", "按期结案率(收缩)(%)",
               "按期结案率下限(%)", "名次变化", "公厕覆盖率(%)", "背街小巷硬化率(%)"):
        assert zh in head, zh
    assert [r[head.index("县级代码")] for r in rows[1:]] == ranked["code"].tolist()
    assert all(re.fullmatch(r"[^A-Za-z]+", str(h)) for h in head), head  # Chinese headers only
    for key in ("gpkg", "parquet"):
        f = gpd.read_file(rep.files[key]) if key == "gpkg" else gpd.read_parquet(rep.files[key])
        assert f.crs == ranked.crs and f["code"].tolist() == ranked["code"].tolist()
        assert f["rank"].tolist() == ranked["rank"].tolist()
        assert f.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert rep.files["map"].read_bytes()[:5] == b"%PDF-"


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
