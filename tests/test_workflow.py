"""A planner's first day, end to end through the command line, on files made here.

init → import a GBK shapefile of grids, the OSM streets, an Excel sheet of phone-app (GCJ-02) toilets and
a CSV of problem reports with one bad row → coverage, siting, problems, hotspots, ranking, a printed map.
The demo builds its layers directly; this test is what proves the importers feed the analyses.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from typer.testing import CliRunner

from sanigrid.layers.crs import wgs84_to_gcj02
from sanigrid.layers.project import open_project
from sanigrid.scripts.cli import app

OSM = Path(__file__).resolve().parents[1] / "layers" / "data" / "guixi-center.osm"
# the old town of the demo extract (WGS84), cut into 3 × 2 grids
WEST, SOUTH, EAST, NORTH = 117.200, 28.283, 117.230, 28.303


def _grids_shapefile(folder: Path) -> Path:
    xs, ys = np.linspace(WEST, EAST, 4), np.linspace(NORTH, SOUTH, 3)
    cells, codes, names = [], [], []
    for j in range(2):
        for i in range(3):
            cells.append(shapely.box(xs[i], ys[j + 1], xs[i + 1], ys[j]))
            codes.append(f"36068100100{j + 1}{i + 1:02d}")
            names.append(f"东门社区第{j * 3 + i + 1}网格")
    frame = gpd.GeoDataFrame({"网格编码": codes, "名称": names, "牵头单位": ["县卫健委", "县教育局", "县住建局"] * 2,
                              "网格长": ["张三", "李四", "王五", "赵六", "钱七", "孙八"]},
                             geometry=cells, crs=4326).to_crs(4548)
    path = folder / "网格.shp"
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)  # as survey bureaus deliver them: no code page file
    return path


def _toilets_xlsx(folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    lon = np.array([117.2050, 117.2150, 117.2250, 117.2100])
    lat = np.array([28.2960, 28.2900, 28.2980, 28.2870])
    glon, glat = wgs84_to_gcj02(lon, lat)  # what a phone app shows
    path = folder / "公厕台账.xlsx"
    pd.DataFrame({"名称": [f"公厕{i + 1}" for i in range(4)], "类别": ["二类", "三类", "一类", "二类"],
                  "经度": glon, "纬度": glat, "厕位数": [6, 4, 12, 8]}).to_excel(path, index=False)
    return path, lon, lat


def _problems_csv(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    n = 80
    lon = rng.uniform(WEST + 0.002, EAST - 0.002, n)
    lat = rng.uniform(SOUTH + 0.002, NORTH - 0.002, n)
    lon[:40] = 117.2150 + rng.normal(0, 0.0003, 40)  # a cluster of reports by one market
    lat[:40] = 28.2930 + rng.normal(0, 0.0003, 40)
    t = pd.Timestamp("2026-10-01 08:00") + pd.to_timedelta(rng.uniform(0, 40 * 24, n), unit="h")
    rows = pd.DataFrame({
        "问题类别": rng.choice(["暴露垃圾", "占道经营", "乱堆物料"], n), "问题描述": "巡查发现",
        "来源": "巡查", "上报时间": t.strftime("%Y-%m-%d %H:%M"), "状态": "立案", "经度": lon, "纬度": lat})
    rows.loc[len(rows)] = ["乱吐", "类别不在目录中", "巡查", "2026-10-05 09:00", "立案", 117.21, 28.29]
    path = folder / "问题.csv"
    rows.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def test_first_day(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--project", str(tmp_path / "county")])
        assert result.exit_code == 0, f"{args}: {result.output}"
        return result.output

    run("init", "--name", "贵溪市", "--county-code", "360681")
    run("import", "grids", str(_grids_shapefile(tmp_path)))
    run("import", "streets", str(OSM))
    xlsx, lon, lat = _toilets_xlsx(tmp_path)
    run("import", "toilets", str(xlsx), "--coords", "gcj02")
    out = run("import", "problems", str(_problems_csv(tmp_path)))
    assert "乱吐" in out  # the unknown category is named …

    p = open_project(tmp_path / "county")
    assert p.store.crs.to_epsg() == 4548
    grids = p.store.read("grids")
    assert sorted(grids["code"]) == sorted(f"36068100100{j}{i:02d}" for j in (1, 2) for i in (1, 2, 3))
    assert set(grids["lead_unit"]) == {"县卫健委", "县教育局", "县住建局"}  # GBK attributes read right
    toilets = p.store.read("toilets").to_crs(4326)
    # GCJ-02 from the phone app is back on WGS84 within 0.1 m (1e-6° ≈ 0.1 m)
    np.testing.assert_allclose(toilets.geometry.x, lon, atol=1e-6)
    np.testing.assert_allclose(toilets.geometry.y, lat, atol=1e-6)
    problems = p.store.read("problems")
    assert len(problems) == 80  # … and its row rejected, nothing else lost
    rejects = list((tmp_path / "county" / "outputs").glob("rejects_problems_*.csv"))
    assert rejects and "乱吐" in rejects[0].read_text(encoding="utf-8-sig")

    run("coverage", "toilets")
    gaps = p.store.read("coverage_gaps")
    assert len(gaps) and (gaps["facility_kind"] == "toilets").all()
    assert p.store.meta("coverage_gaps")["params"]["toilets"]["radius_m"] == 300
    run("site", "toilets", "--new", "2")
    assert len(p.store.read("suggested_sites")) == 2
    run("problems", "--as-of", "2026-11-15")
    run("hotspots", "--as-of", "2026-11-15")
    clusters = p.store.read("hotspot_clusters")
    market = gpd.GeoSeries([shapely.Point(117.2150, 28.2930)], crs=4326).to_crs(p.store.crs).iloc[0]
    assert clusters.distance(market).min() < 50  # the planted cluster is found where it was planted
    run("rank", "--as-of", "2026-11-15")
    assert sorted(p.store.read("scorecard")["rank"]) == list(range(1, 7))
    out = run("print", "ranking", "--paper", "A4", "--format", "pdf")
    pdf = tmp_path / "county" / "outputs" / "全县_ranking_A4.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert {x.name for x in (tmp_path / "county" / "outputs").iterdir()} >= {"coverage_toilets.xlsx",
                                                                            "sites_toilets.xlsx"}
