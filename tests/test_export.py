"""Excel exports: Chinese headers, WGS84 coordinates, legal sheet names, parameter sheets."""

from __future__ import annotations

import io

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely

from sanigrid.layers.export import params_table, sheet_name, write_xlsx, zh_headers


def test_write_xlsx_chinese_headers_and_lonlat():
    pts = gpd.GeoDataFrame({"name": ["东门公厕"], "seats": [6]}, geometry=[shapely.Point(117.22, 28.30)],
                           crs=4326).to_crs(4548)
    buf = io.BytesIO()
    write_xlsx({"公厕/清单": pts, "说明": params_table({"radius_m": 300, "custom": "x"})}, buf,
               headers=zh_headers("toilets"))
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames == ["公厕_清单", "说明"]
    rows = list(wb["公厕_清单"].iter_rows(values_only=True))
    assert rows[0] == ("名称", "厕位数", "经度", "纬度")
    assert rows[1][:2] == ("东门公厕", 6)
    assert rows[1][2] == pytest.approx(117.22, abs=1e-6) and rows[1][3] == pytest.approx(28.30, abs=1e-6)
    items = [r[0] for r in wb["说明"].iter_rows(values_only=True)]
    assert items == ["项目", "服务半径(米) (radius_m)", "custom"]


def test_sheet_names_are_legal():
    assert sheet_name("a[b]:c*?/d\\e") == "a_b__c___d_e"
    assert len(sheet_name("网" * 40)) == 31


def test_plain_frame_passes_through():
    buf = io.BytesIO()
    write_xlsx({"t": pd.DataFrame({"a": [1, 2]})}, buf)
    ws = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))["t"]
    assert [r for r in ws.iter_rows(values_only=True)] == [("a",), (1,), (2,)]


def _toilets_in_project(project, toilets_wgs84):
    project.store.write("toilets", toilets_wgs84)
    return project.store.read("toilets")


@pytest.mark.parametrize("ending", [".xlsx", ".csv", ".geojson", ".gpkg", ".shp"])
def test_export_then_import_round_trips(project, toilets_wgs84, tmp_path, ending):
    """What sanigrid writes, sanigrid (and so Excel/QGIS users' tools) reads back unchanged."""
    from sanigrid.layers.export import export_layer
    from sanigrid.layers.importers import import_file

    stored = _toilets_in_project(project, toilets_wgs84)
    path = export_layer(stored, "toilets", tmp_path / f"公厕{ending}")
    if ending == ".shp":
        assert path.with_suffix(".cpg").read_text().strip().upper() in ("GBK", "CP936", "936")
        assert "公厕".encode("gbk") in path.with_suffix(".dbf").read_bytes()
    project.store.drop("toilets")
    rep = import_file(project, "toilets", path)
    assert rep.rejected == 0
    back = project.store.read("toilets")
    assert list(back["name"]) == list(stored["name"])
    assert list(back["toilet_class"]) == list(stored["toilet_class"])
    assert back.geometry.distance(stored.geometry).max() < 0.05  # metres (tables keep 6 decimals of degrees)


def test_export_refuses_unknown_ending(project, toilets_wgs84, tmp_path):
    from sanigrid.layers._errors import SanigridError
    from sanigrid.layers.export import export_layer

    with pytest.raises(SanigridError, match=r"\.xlsx"):
        export_layer(_toilets_in_project(project, toilets_wgs84), "toilets", tmp_path / "t.docx")


def test_dbf_names_fit_ten_bytes_and_stay_unique():
    from sanigrid.layers.export import _dbf_names

    names = _dbf_names(["name", "toilet_class", "toilet_classes", "最近设施距离"], {"name": "名称"}, "GBK")
    assert names["name"] == "名称"
    assert names["toilet_class"] == "toilet_cla" and names["toilet_classes"] == "toilet_cl1"
    assert all(len(v.encode("gbk")) <= 10 for v in names.values())
