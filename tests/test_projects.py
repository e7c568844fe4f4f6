"""Facility projects: coverage counts what is built, before/after per grid and per project, late
projects, planned sites fixed in siting (hand-made streets, known answers)."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from sanigrid.geo.projects import planned_coverage
from sanigrid.layers import projects
from sanigrid.layers.project import Project
from sanigrid.scripts.cli import app
from sanigrid.scripts.coverage import run_coverage, run_planned_coverage, run_siting

CRS = "EPSG:4548"
X0, Y0 = 520_000.0, 3_130_000.0  # in the demo town, GK zone 39
AS_OF = datetime(2026, 11, 16)


def _street() -> gpd.GeoDataFrame:
    # one straight street of 3 km through two grids (W: 0–1500 m, E: 1500–3000 m)
    return gpd.GeoDataFrame({"name": ["长街"], "road_class": ["支路"]},
                            geometry=[shapely.LineString([(X0, Y0), (X0 + 3000, Y0)])], crs=CRS)


def _grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["W", "E"], "households": [0, 0]},
                            geometry=[shapely.box(X0 - 10, Y0 - 200, X0 + 1500, Y0 + 200),
                                      shapely.box(X0 + 1500, Y0 - 200, X0 + 3010, Y0 + 200)], crs=CRS)


def _toilets() -> gpd.GeoDataFrame:
    # built at 300 (serves 0–600); planned at 1800 (serves 1500–2100), late; under construction at 500
    # (serves 200–800: adds 600–800); closed at 2700 (serves no one)
    xs = [300, 1800, 500, 2700]
    return gpd.GeoDataFrame({
        "name": ["老厕", "新厕甲", "新厕乙", "旧厕"],
        "build_status": [None, "规划", "在建", "停用"],
        "planned_date": pd.to_datetime([None, "2026-10-31", "2027-03-01", None]),
        "project_unit": [None, "县城管局", "县住建局", None],
    }, geometry=[shapely.Point(X0 + x, Y0 + 5) for x in xs], crs=CRS)


def _residents() -> gpd.GeoDataFrame:
    # households at 100 (served now), 700 (by 新厕乙), 1700 (by 新厕甲), 2700 (by no one: 旧厕 is closed)
    xs, hh = [100, 700, 1700, 2700], [100, 40, 60, 30]
    return gpd.GeoDataFrame({"name": list("abcd"), "households": hh},
                            geometry=[shapely.Point(X0 + x, Y0 + 20) for x in xs], crs=CRS)


def test_statuses_and_late_projects():
    t = _toilets()
    assert projects.build_status(t).tolist() == ["建成", "规划", "在建", "停用"]
    assert projects.built(t)["name"].tolist() == ["老厕"]
    assert projects.when_done(t)["name"].tolist() == ["老厕", "新厕甲", "新厕乙"]
    lt = projects.late(t, as_of=AS_OF)
    assert lt["late"].tolist() == [False, True, False, False]
    assert lt["days_late"].tolist() == [0, 16, 0, 0]  # planned 10-31, counted on 11-16
    # the planned day itself is not late yet
    assert not projects.late(t, as_of=datetime(2026, 10, 31, 23, 0))["late"].any()
    plist = projects.project_list({"toilets": t}, as_of=AS_OF)
    assert plist["name"].tolist() == ["新厕甲", "新厕乙"] and plist["late"].tolist() == [True, False]


def test_before_and_after_per_grid_and_per_project():
    res = planned_coverage(_toilets(), _street(), kind="toilets", radius_m=300, as_of=AS_OF,
                           residents=_residents(), grids=_grids())
    s = res.summary
    assert (s["built"], s["projects"], s["late"]) == (1, 2, 1)
    assert s["covered_km_now"] == pytest.approx(0.6)
    assert s["covered_km_done"] == pytest.approx(0.6 + 0.2 + 0.6)
    assert s["new_street_km"] == pytest.approx(0.8)
    assert (s["households_covered_now"], s["households_covered_done"], s["new_households"]) == (100, 200, 100)
    g = res.grids.set_index("grid_code")
    assert g.loc["W", "covered_m_now"] == pytest.approx(600) and g.loc["W", "covered_m_done"] == pytest.approx(800)
    assert g.loc["E", "covered_m_now"] == pytest.approx(0) and g.loc["E", "covered_m_done"] == pytest.approx(600)
    assert g["new_street_m"].to_dict() == pytest.approx({"W": 200, "E": 600})
    assert g["coverage_pct_done"].to_dict() == pytest.approx({"W": 100 * 800 / 1500, "E": 100 * 600 / 1500}, abs=0.05)
    assert g["new_households"].to_dict() == {"W": 40, "E": 60}
    p = res.projects.set_index("name")
    assert p["new_street_m"].to_dict() == pytest.approx({"新厕甲": 600, "新厕乙": 200})
    assert p["new_households"].to_dict() == {"新厕甲": 60, "新厕乙": 40}
    assert p["grid_code"].to_dict() == {"新厕甲": "E", "新厕乙": "W"}
    assert p.loc["新厕甲", "late"] and p.loc["新厕甲", "days_late"] == 16 and not p.loc["新厕乙", "late"]


@pytest.fixture
def town(project: Project) -> Project:
    with project.store.transaction() as tx:
        tx.write("streets", _street())
        tx.write("grids", _grids())
        tx.write("residents", _residents())
        tx.write("toilets", _toilets())
    return project


def _grid_cover(out: dict) -> pd.DataFrame:
    return pd.read_excel(out["xlsx"], sheet_name="网格排名").set_index("网格编码")


def test_after_equals_coverage_with_the_projects_built(town: Project):
    # coverage counts only what is built: the old toilet alone (0–600 m; household a)
    now = run_coverage(town, "toilets")
    assert now["facilities"] == 1 and now["covered_km"] == pytest.approx(0.6)
    assert now["households_uncovered"] == 130
    cmp = run_planned_coverage(town, "toilets", as_of=AS_OF)
    assert cmp.summary["coverage_pct_now"] == now["coverage_pct"]
    # the same store with every project built, and the closed one gone
    t = town.store.read("toilets")
    done = t[projects.is_pending(t) | projects.is_built(t)].assign(build_status="建成")
    town.store.write("toilets", done)
    out = run_coverage(town, "toilets")
    g = _grid_cover(out)
    mine = cmp.grids.set_index("grid_code")
    for code in ("W", "E"):
        assert mine.loc[code, "covered_m_done"] == pytest.approx(g.loc[code, "已覆盖长度(米)"], abs=0.05)
        assert mine.loc[code, "coverage_pct_done"] == pytest.approx(g.loc[code, "覆盖率(%)"], abs=0.05)
        assert mine.loc[code, "households_covered_done"] == g.loc[code, "户数"] - g.loc[code, "未覆盖户数"]
    assert cmp.summary["coverage_pct_done"] == out["coverage_pct"]
    assert cmp.summary["households_covered_done"] == out["households"] - out["households_uncovered"]


def test_planned_workbook_and_cli(town: Project):
    r = CliRunner().invoke(app, ["coverage", "toilets", "--with-planned", "-p", str(town.root)])
    assert r.exit_code == 0, r.output
    assert "建成后" in r.output and "新厕甲" in r.output
    wb = openpyxl.load_workbook(town.output_path("建设项目覆盖对比_toilets.xlsx"))
    assert {"汇总", "网格对比", "项目新增覆盖", "逾期项目"} <= set(wb.sheetnames)
    ws = wb["项目新增覆盖"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["设施类型", "名称", "建设状态"] and "新增覆盖户数" in header
    rows = {r[1]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["新厕甲"]["新增覆盖街道(米)"] == pytest.approx(600) and rows["新厕甲"]["是否逾期"] == "是"
    late = list(wb["逾期项目"].iter_rows(min_row=2, values_only=True))
    assert len(late) == 1 and late[0][1] == "新厕甲"
    r = CliRunner().invoke(app, ["projects", "-p", str(town.root), "--as-of", "2026-11-16"])
    assert r.exit_code == 0, r.output
    assert "逾期 1 个" in r.output and "新厕甲" in r.output
    wb = openpyxl.load_workbook(town.output_path("设施建设项目_20261116.xlsx"))
    got = [(r[1], r[2], r[-1]) for r in wb["建设项目"].iter_rows(min_row=2, values_only=True)]
    assert got == [("新厕甲", "规划", 16), ("新厕乙", "在建", 0)]


def test_siting_takes_planned_sites_as_fixed(town: Project):
    fixed = run_siting(town, "toilets", new=1)
    assert fixed["fixed_planned"] == 2
    x = shapely.get_x(town.store.read("suggested_sites").geometry.iloc[0]) - X0
    # built 0–600 and planned 200–800, 1500–2100: the best new site fills 900–1500 or 2100–3000
    assert not (1500 - 300 < x < 2100 + 300)
    free = run_siting(town, "toilets", new=1, planned_fixed=False)
    assert free["fixed_planned"] == 0
    assert free["newly_served"] > fixed["newly_served"]  # the planned ones' streets count as open without them


def test_map_config_draws_projects_in_their_own_style():
    from sanigrid.layers.catalogue import spec
    from sanigrid.web.mappage import layer_config

    for kind in ("toilets", "transfer_stations", "collection_points", "markets"):
        st = layer_config(spec(kind), lang="zh")["style"]
        assert st["status"]["field"] == "build_status"
        styles = {k: v for k, v, _ in st["status"]["styles"]}
        assert set(styles) == {"规划", "在建", "停用"}
        assert styles["规划"]["fill_opacity"] == 0.0 and styles["规划"]["dash"]  # hollow and dashed
    en = layer_config(spec("toilets"), lang="en")["style"]["status"]["styles"]
    assert [label for _, _, label in en] == ["planned", "under construction", "closed"]
    assert "status" not in layer_config(spec("problems"))["style"]
