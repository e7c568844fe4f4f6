"""`sanigrid problems / hotspots / rank` on a small synthetic project: layers, xlsx, 责任清单 content."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from sanigrid.geo.problems import responsibility_list
from sanigrid.layers.project import Project
from sanigrid.scripts.cli import app
from sanigrid.scripts.problems import run_hotspots, run_problems, run_rank

CRS = "EPSG:4548"
X0, Y0 = 523_000.0, 3_131_000.0
AS_OF = datetime(2026, 11, 16)


def _grids() -> gpd.GeoDataFrame:
    boxes = [shapely.box(X0 + i * 1000, Y0 + j * 1000, X0 + (i + 1) * 1000, Y0 + (j + 1) * 1000)
             for j in range(2) for i in range(2)]
    return gpd.GeoDataFrame({"code": [f"3606810010010{k}" for k in range(1, 5)], "name": ["一", "二", "三", "四"],
                             "lead_unit": ["县城管局", "县住建局", "县卫健委", "县财政局"], "households": 500},
                            geometry=boxes, crs=CRS)


def _problems(n: int = 600, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xy = np.column_stack([X0 + rng.uniform(0, 2000, n), Y0 + rng.uniform(0, 2000, n)])
    xy[:60] = [X0 + 300, Y0 + 300] + rng.normal(0, 15, (60, 2))  # a cluster
    xy[60:90] = [X0 + 1500, Y0 + 1500]                            # a default-geocode pile
    rep = pd.Timestamp("2026-08-20") + pd.to_timedelta(rng.uniform(0, 87, n), unit="D")
    cats = rng.choice(["暴露垃圾", "占道经营", "乱堆物料"], n)
    closed = rep + pd.to_timedelta(rng.uniform(1, 60, n), unit="h")
    open_ = rng.uniform(0, 1, n) < 0.1
    status = np.where(open_, "处置", "结案")
    closed = pd.Series(closed).where(~open_, pd.NaT)
    return gpd.GeoDataFrame({"problem_id": np.arange(1, n + 1), "category": cats, "reported_at": rep,
                             "status": status, "closed_at": closed, "source": "巡查"},
                            geometry=shapely.points(xy), crs=CRS)


@pytest.fixture
def county(project: Project) -> Project:
    project.settings.hotspots.cell_size_m = 100
    project.settings.hotspots.cluster_eps_m = 30
    with project.store.transaction() as tx:
        tx.write("grids", _grids())
        tx.write("problems", _problems(), params={"as_of": AS_OF.isoformat()})
        tx.write("streets", gpd.GeoDataFrame({"name": ["中山路"], "road_class": ["主干路"]}, geometry=[
            shapely.LineString([(X0, Y0 + 500), (X0 + 2000, Y0 + 500)])], crs=CRS))
    return project


def test_run_problems_writes_responsibility_list(county):
    rep = run_problems(county)
    assert rep.as_of == AS_OF  # the date recorded with the layer
    assert rep.filled["deadline"] == 600 and rep.filled["grid_code"] == 600
    assert rep.path is not None and rep.path.exists()
    wb = openpyxl.load_workbook(rep.path)
    assert wb.sheetnames[:2] == ["状态汇总", "汇总"]
    assert all(name.startswith("网格") for name in wb.sheetnames[2:])
    header = [c.value for c in wb[wb.sheetnames[2]][1]]
    for col in ("编号", "处置时限", "是否逾期", "逾期天数", "责任单位", "经度", "纬度"):
        assert col in header
    total_open = int(rep.status.loc[rep.status["status"].str.startswith("未结案"), "count"].iloc[0])
    assert sum(len(f) for k, f in rep.sheets.items() if k != "汇总") == total_open
    assert rep.sheets["汇总"]["open"].sum() == total_open


def test_responsibility_list_orders_overdue_first():
    p = _problems(100, seed=3).iloc[:40].copy()
    p["grid_code"] = "G1"
    p["unit"] = "县城管局"
    p["status"] = "处置"
    p["closed_at"] = pd.NaT
    p["deadline"] = pd.Timestamp("2026-11-10")
    p.loc[p.index[:5], "deadline"] = pd.Timestamp("2026-11-20")
    sheets = responsibility_list(p, as_of=datetime(2026, 11, 16))
    g = sheets["网格G1"]
    assert (g["overdue"].head(35) == "是").all() and (g["overdue"].tail(5) == "否").all()
    assert g["days_overdue"].iloc[0] == pytest.approx(6.0)
    s = sheets["汇总"].iloc[0]
    assert s["open"] == 40 and s["overdue_count"] == 35


def test_run_hotspots_and_rank_write_layers(county):
    run = run_hotspots(county)
    st = county.store
    assert run.hotspots.params["pile_reports"] == 30
    cl = st.read("hotspot_clusters")
    assert len(cl) >= 1 and cl.iloc[0]["count"] >= 50
    assert cl.iloc[0].geometry.contains(shapely.Point(X0 + 300, Y0 + 300))
    cells = st.read("gi_cells")
    assert len(cells) == len(run.hotspots.cells) and set(cells["label"]) <= {
        "热点99%", "热点95%", "热点90%", "冷点99%", "冷点95%", "冷点90%", "不显著"}
    assert st.has("rebounds")
    assert st.meta("gi_cells")["params"]["cell_size_m"] == 100
    wb = openpyxl.load_workbook(run.path)
    assert {"聚集区", "显著冷热点", "重复坐标堆点", "反弹", "多次反弹地点"} <= set(wb.sheetnames)

    res, path = run_rank(county, period="month")
    layer = st.read("scorecard")
    assert len(layer) == 4 and sorted(layer["rank"].tolist()) == sorted(res.grids["rank"].tolist())
    assert layer["rank"].min() == 1
    assert res.period[0] == pd.Timestamp("2026-11-01")
    wb = openpyxl.load_workbook(path)
    header = [c.value for c in wb["排名通报"][1]]
    assert header[:5] == ["排名", "网格编码", "网格名称", "牵头单位", "综合得分"]
    assert "名次变化" in header and "按期结案率下限(%)" in header


def test_cli_commands(county):
    runner = CliRunner()
    root = str(county.root)
    r = runner.invoke(app, ["problems", "-p", root, "--as-of", "2026-11-10"])
    assert r.exit_code == 0, r.output
    assert "责任清单" in r.output
    r = runner.invoke(app, ["hotspots", "-p", root, "--since", "2026-09-01", "--category", "暴露垃圾"])
    assert r.exit_code == 0, r.output
    assert "聚集区" in r.output
    r = runner.invoke(app, ["rank", "-p", root, "--period", "week"])
    assert r.exit_code == 0, r.output
    assert "网格排名" in r.output


def test_hotspots_with_too_few_reports_still_writes_clusters_and_rebounds(county):
    run = run_hotspots(county, since=datetime(2026, 11, 15))
    assert "gi_skipped" in run.hotspots.params
    assert county.store.read("gi_cells").empty
    assert county.store.has("hotspot_clusters") and county.store.has("rebounds")


def test_responsibility_list_of_no_problems_is_an_empty_summary():
    p = _problems(100, seed=3).iloc[:0].copy()
    p["grid_code"], p["unit"], p["deadline"] = "G1", "县城管局", pd.Timestamp("2026-11-10")
    sheets = responsibility_list(p, as_of=datetime(2026, 11, 16))
    assert list(sheets) == ["汇总"] and sheets["汇总"].empty
