"""Street furniture, facades and 城中村 zones: imported, validated and kept like every other layer."""

from __future__ import annotations

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from conftest import TOWN_LAT, TOWN_LON

from sanigrid.layers.export import export_layer
from sanigrid.layers.importers import import_file


def _components_xlsx(path, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["部件类型", "完好状况", "经度", "纬度", "检查日期"])
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_components_import_with_chinese_headers_and_refuse_an_unknown_kind(tmp_path, project):
    rows = [["井盖", "完好", TOWN_LON + 0.001 * i, TOWN_LAT, "2026-10-0" + str(i + 1)] for i in range(4)]
    rows.append(["下水道", "破损", TOWN_LON + 0.01, TOWN_LAT, "2026-10-09"])  # not a kind of the settings
    rows.append(["路灯", "坏了", TOWN_LON + 0.011, TOWN_LAT, "2026-10-09"])  # not a condition
    path = tmp_path / "部件.xlsx"
    _components_xlsx(path, rows)
    rep = import_file(project, "components", path)
    assert (rep.imported, rep.rejected) == (4, 2)
    msgs = {(i.field, i.code): i.message for i in rep.validation.issues}
    assert "'下水道' ×1" in msgs[("kind", "not_allowed")]
    assert "'坏了' ×1" in msgs[("condition", "not_allowed")]
    stored = project.store.read("components")
    assert stored["kind"].tolist() == ["井盖"] * 4
    assert str(stored["checked_on"].iloc[0])[:10] == "2026-10-01"
    # a county adds its own kind in the settings, and the same file's row goes in
    project.settings.components.kinds.append("下水道")
    rep = import_file(project, "components", path)
    assert rep.imported == 1  # the four are copies of stored rows now (refused); 下水道 accepted
    assert "下水道" in set(project.store.read("components")["kind"])


def test_facades_lines_and_polygons_and_zones_round_trip(tmp_path, project):
    lon, lat = TOWN_LON, TOWN_LAT
    facades = gpd.GeoDataFrame({"名称": ["东街1号", "东街3号", "花园村7栋"], "已粉刷": ["是", "否", "是"],
                                "立面面积": [None, None, 350.0]}, geometry=[
        shapely.LineString([(lon, lat), (lon + 0.001, lat)]),
        shapely.LineString([(lon, lat + 0.001), (lon + 0.001, lat + 0.001)]),
        shapely.box(lon + 0.002, lat, lon + 0.0025, lat + 0.0001)], crs=4326)
    gj = tmp_path / "立面.geojson"
    facades.to_file(gj, driver="GeoJSON")
    assert import_file(project, "facades", gj).imported == 3
    zones = gpd.GeoDataFrame({"名称": ["花园村"], "片区类型": ["城中村"]},
                             geometry=[shapely.box(lon - 0.001, lat - 0.001, lon + 0.003, lat + 0.002)], crs=4326)
    zj = tmp_path / "片区.geojson"
    zones.to_file(zj, driver="GeoJSON")
    assert import_file(project, "zones", zj).imported == 1
    stored = project.store.read("facades")
    assert stored["painted"].tolist() == [True, False, True]
    assert stored.geometry.geom_type.tolist() == ["LineString", "LineString", "Polygon"]
    assert stored["area_m2"].iloc[2] == pytest.approx(350.0)
    # exported with Chinese field names and imported again into a fresh layer: the same rows
    out = export_layer(stored, "facades", tmp_path / "立面导出.gpkg")
    project.store.drop("facades")
    assert import_file(project, "facades", out).imported == 3
    again = project.store.read("facades")
    pd.testing.assert_series_equal(again["painted"], stored["painted"], check_dtype=False)
    assert again.geometry.length.round(3).tolist() == stored.geometry.length.round(3).tolist()
    bad = zones.assign(片区类型=["老城区"])
    bad.to_file(zj, driver="GeoJSON")
    rep = import_file(project, "zones", zj)
    assert rep.refused and rep.validation.issues[0].field == "zone_type"
    assert len(project.store.read("zones")) == 1  # the store is as it was
