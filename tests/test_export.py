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


def _lonlat_by_drop(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """table_with_lonlat as it was written before (drop the geometry, insert 经度 and 纬度)."""
    out = pd.DataFrame(frame).drop(columns=frame.geometry.name)
    if len(frame) and frame.crs is not None:
        pts = frame.geometry.representative_point().to_crs(4326)
        out["经度"] = pts.x.round(6).to_numpy()
        out["纬度"] = pts.y.round(6).to_numpy()
    return out


@pytest.mark.parametrize("case", ["plain", "duplicate_index", "has_lonlat", "empty", "slice", "polygons",
                                  "missing_and_empty", "lines_in_utm"])
def test_table_with_lonlat_equals_dropping_the_geometry(case):
    """One new frame from the columns gives what the drop-and-insert did: values, dtypes, order, index."""
    from sanigrid.layers.export import table_with_lonlat

    n = 6
    frame = gpd.GeoDataFrame(
        {"name": [f"公厕{i}" for i in range(n)], "seats": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
         "open": [True, False] * 3, "area": [1.5, float("nan"), 2.0, 3.25, 0.0, 9.0],
         "when": pd.to_datetime(["2026-01-01"] * n), "note": pd.Series(["a", None] * 3, dtype="str")},
        geometry=[shapely.Point(500_000 + 100 * i, 3_100_000 + 50 * i) for i in range(n)], crs=4548)
    if case == "duplicate_index":
        frame.index = [3, 3, 1, 1, 0, 9]
    elif case == "has_lonlat":
        frame.insert(1, "经度", 0.0)
    elif case == "empty":
        frame = frame.iloc[:0]
    elif case == "slice":
        frame = frame.iloc[2:5]
    elif case == "polygons":
        frame = frame.set_geometry(frame.geometry.buffer(10))
    elif case == "missing_and_empty":  # no geometry, or an empty one: NaN, as geopandas gives
        frame = frame.set_geometry([None, shapely.Polygon(), *frame.geometry.iloc[2:]], crs=4548)
    elif case == "lines_in_utm":
        frame = frame.set_geometry([shapely.LineString([(400_000 + i, 3_000_000), (400_500, 3_000_900 + i)])
                                    for i in range(n)], crs=32650)
    got, want = table_with_lonlat(frame), _lonlat_by_drop(frame)
    pd.testing.assert_frame_equal(got, want)
    assert list(got.columns) == list(want.columns) and list(got.dtypes) == list(want.dtypes)
    assert frame.geometry.name in frame.columns  # the caller's frame is left as it was
