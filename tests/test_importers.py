"""Importers: every file format, encodings, coordinate systems and column mapping, on files made here."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod

from sanigrid.layers._errors import CRSError, ImportError_
from sanigrid.layers.catalogue import spec
from sanigrid.layers.columns import match_columns, parse_mapping
from sanigrid.layers.crs import wgs84_to_bd09, wgs84_to_gcj02
from sanigrid.layers.importers import (
    guess_crs,
    import_file,
    parse_coordinate,
    read_file,
    shapefile_encoding,
)
from sanigrid.layers.osm import OSM_ROAD_CLASS

GEOD = Geod(ellps="WGS84")
ROUND_TRIP_M = 0.1
TOWN = (117.22, 28.30)


def town_points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return TOWN[0] + rng.uniform(-0.02, 0.02, n), TOWN[1] + rng.uniform(-0.015, 0.015, n)


def back_in_wgs84(project, kind: str) -> gpd.GeoDataFrame:
    return project.store.read(kind).to_crs(4326)


# ------------------------------------------------------------------ shapefiles and encodings

CHINESE = {"名称": ["城东公厕", "菜市场公厕", "滨江路公厕"], "类别": ["二类", "一类", "三类"], "厕位数": [6, 12, 4]}


def write_shp(path: Path, *, encoding: str, keep_cpg: bool, crs=4326) -> gpd.GeoDataFrame:
    lon, lat = town_points(3)
    frame = gpd.GeoDataFrame(CHINESE, geometry=gpd.points_from_xy(lon, lat), crs=crs)
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    if not keep_cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return frame


def test_gbk_shapefile_without_cpg(tmp_path, project):
    shp = tmp_path / "公厕.shp"
    written = write_shp(shp, encoding="GBK", keep_cpg=False)
    assert not shp.with_suffix(".cpg").exists()
    # the DBF really is GBK: the UTF-8 bytes of the names are not in it, the GBK ones are
    dbf = shp.with_suffix(".dbf").read_bytes()
    assert "城东公厕".encode("gbk") in dbf and "城东公厕".encode() not in dbf
    enc, note = shapefile_encoding(shp)
    assert enc == "gbk" and "detected" in note
    raw = read_file(shp, kind="toilets")
    assert raw.frame["name"].tolist() == CHINESE["名称"]
    assert raw.frame["toilet_class"].tolist() == CHINESE["类别"]
    rep = import_file(project, "toilets", shp)
    assert rep.imported == 3 and rep.rejected == 0
    back = back_in_wgs84(project, "toilets")
    assert back["name"].tolist() == CHINESE["名称"]
    assert back["seats"].tolist() == [6, 12, 4]
    np.testing.assert_allclose(back.geometry.x, written.geometry.x, atol=1e-9)


def test_shapefile_with_cpg(tmp_path):
    shp = tmp_path / "toilets_utf8.shp"
    write_shp(shp, encoding="UTF-8", keep_cpg=True)
    enc, note = shapefile_encoding(shp)
    assert enc == "utf-8" and ".cpg" in note
    assert read_file(shp, kind="toilets").frame["name"].tolist() == CHINESE["名称"]
    # a .cpg naming the Windows code page of GBK
    shp2 = tmp_path / "toilets_936.shp"
    write_shp(shp2, encoding="GBK", keep_cpg=False)
    shp2.with_suffix(".cpg").write_text("936")
    assert shapefile_encoding(shp2)[0] == "gbk"
    assert read_file(shp2, kind="toilets").frame["name"].tolist() == CHINESE["名称"]


def test_gb18030_only_text_is_detected(tmp_path):
    # 㐀 (U+3400) is in GB18030 but not in GBK
    lon, lat = town_points(1)
    frame = gpd.GeoDataFrame({"名称": ["㐀公厕"]}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    shp = tmp_path / "gb18030.shp"
    pyogrio.write_dataframe(frame, shp, encoding="GB18030")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    assert shapefile_encoding(shp)[0] == "gb18030"
    assert read_file(shp, kind="toilets").frame["name"].tolist() == ["㐀公厕"]


def test_gauss_kruger_shapefile_without_prj(tmp_path, project):
    lon, lat = town_points(3)
    frame = gpd.GeoDataFrame(CHINESE, geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(4527)
    shp = tmp_path / "gk.shp"
    pyogrio.write_dataframe(frame, shp, encoding="UTF-8")
    shp.with_suffix(".prj").unlink()
    raw = read_file(shp, kind="toilets")
    assert raw.frame.crs.to_epsg() == 4527  # zone 39 read from the 39 xxx xxx m eastings
    assert any("zone 39" in n and "EPSG:4527" in n for n in raw.notes)
    import_file(project, "toilets", shp)
    back = back_in_wgs84(project, "toilets")
    d = GEOD.inv(back.geometry.x, back.geometry.y, lon, lat)[2]
    assert np.max(d) < 0.01


# ------------------------------------------------------------------ CRS guessing


def test_guess_crs_from_magnitudes():
    crs, swap, note = guess_crs(np.array([117.2]), np.array([28.3]))
    assert crs.to_epsg() == 4326 and not swap and "degrees" in note
    crs, swap, _ = guess_crs(np.array([39_521_000.0]), np.array([3_131_000.0]))
    assert crs.to_epsg() == 4527 and not swap
    # surveyors' X = northing, Y = easting
    crs, swap, note = guess_crs(np.array([3_131_000.0]), np.array([39_521_000.0]))
    assert crs.to_epsg() == 4527 and swap and "swapped" in note
    # 6-degree zone 20 (central meridian 117°E)
    crs, _, _ = guess_crs(np.array([20_521_000.0]), np.array([3_131_000.0]))
    assert crs.to_epsg() == 4498
    # no zone number: needs the project's zone, else the user is asked
    with pytest.raises(CRSError, match="EPSG:4548"):
        guess_crs(np.array([521_000.0]), np.array([3_131_000.0]))
    crs, _, note = guess_crs(np.array([521_000.0]), np.array([3_131_000.0]), hint="EPSG:4548")
    assert crs.to_epsg() == 4548 and "project" in note


def test_csv_with_gk_xy_without_zone_uses_project_crs(tmp_path, project, toilets_wgs84):
    project.store.write("toilets", toilets_wgs84)  # fixes the project CRS at EPSG:4548
    pts = toilets_wgs84.to_crs(4548)
    csv = tmp_path / "gk.csv"
    pd.DataFrame({"名称": ["甲", "乙"], "X": pts.geometry.y[:2].round(3), "Y": pts.geometry.x[:2].round(3)}
                 ).to_csv(csv, index=False)
    rep = import_file(project, "toilets", csv)
    assert rep.imported == 2
    assert any("surveying convention" in n for n in rep.validation.notes)
    back = project.store.read("toilets").iloc[-2:]
    np.testing.assert_allclose(back.geometry.x, pts.geometry.x[:2], atol=0.01)
    np.testing.assert_allclose(back.geometry.y, pts.geometry.y[:2], atol=0.01)


# ------------------------------------------------------------------ tables


def write_xlsx(path: Path, rows: list[list], *, title: str | None = None, sheet: str = "公厕") -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    if title:
        ws.append([title])
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_xlsx_with_chinese_headers_and_a_title_row(tmp_path, project):
    lon, lat = town_points(3)
    xlsx = tmp_path / "公厕台账.xlsx"
    write_xlsx(xlsx, [["序号", "名称", "类别", "经度", "纬度", "厕位数", "无障碍", "开放时间"]] + [
        [i + 1, f"公厕{i}", c, lon[i], lat[i], s, b, "全天"]
        for i, (c, s, b) in enumerate([("二类", 6, "是"), ("一类", "8个", "否"), ("三类", 4.0, "Y")])
    ], title="某县公厕台账 2026")
    raw = read_file(xlsx, kind="toilets")
    assert raw.rows.tolist() == [3, 4, 5]  # Excel's own row numbers: title row 1, header row 2
    assert any("header found on row 2" in n for n in raw.notes)
    assert any("序号" in n for n in raw.notes)  # a column not imported is named, not dropped silently
    rep = import_file(project, "toilets", xlsx)
    assert rep.imported == 3, rep.validation.issues
    back = back_in_wgs84(project, "toilets")
    assert back["name"].tolist() == ["公厕0", "公厕1", "公厕2"]
    assert back["seats"].tolist() == [6, 8, 4]
    assert back["accessible"].tolist() == [True, False, True]
    np.testing.assert_allclose(back.geometry.x, lon, atol=1e-9)


def test_xlsx_problems_with_dates_and_sheet_choice(tmp_path, project):
    lon, lat = town_points(2)
    xlsx = tmp_path / "问题.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["这张表是说明"])
    ws = wb.create_sheet("案件")
    ws.append(["案件号", "问题类别", "上报时间", "结案时间", "经度", "纬度", "来源"])
    ws.append([101, "暴露垃圾", pd.Timestamp("2026-03-01 08:30").to_pydatetime(), "2026年3月1日 12时30分",
               lon[0], lat[0], "巡查"])
    ws.append([102, "占道经营", "2026/3/2 9:00", None, lon[1], lat[1], "12345"])
    wb.save(xlsx)
    with pytest.raises(ImportError_, match="--layer"):
        read_file(xlsx, kind="problems")  # the first sheet is the note
    rep = import_file(project, "problems", xlsx, layer="案件")
    assert rep.imported == 2, rep.validation.issues
    back = project.store.read("problems").sort_values("problem_id")
    assert back["problem_id"].tolist() == [101, 102]
    assert back["reported_at"].tolist() == [pd.Timestamp("2026-03-01 08:30"), pd.Timestamp("2026-03-02 09:00")]
    assert back["closed_at"].iloc[0] == pd.Timestamp("2026-03-01 12:30")
    assert pd.isna(back["closed_at"].iloc[1])


def test_problem_ids_are_assigned_when_missing(tmp_path, project):
    lon, lat = town_points(3)
    csv = tmp_path / "p.csv"
    pd.DataFrame({"类别": ["暴露垃圾"] * 3, "上报时间": ["2026-03-01"] * 3, "lng": lon, "lat": lat}
                 ).to_csv(csv, index=False)
    import_file(project, "problems", csv)
    lon2, lat2 = town_points(2, seed=2)
    csv2 = tmp_path / "p2.csv"
    pd.DataFrame({"类别": ["乱堆物料"] * 2, "上报时间": ["2026-03-02"] * 2, "lng": lon2, "lat": lat2}
                 ).to_csv(csv2, index=False)
    import_file(project, "problems", csv2)
    assert sorted(project.store.read("problems")["problem_id"].tolist()) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_csv_encodings(tmp_path, encoding):
    csv = tmp_path / "t.csv"
    csv.write_bytes("名称,经度,纬度\n东门公厕,117.22,28.30\n".encode(encoding))
    raw = read_file(csv, kind="toilets")
    assert raw.frame["name"].tolist() == ["东门公厕"]
    assert raw.rows.tolist() == [2]


@pytest.mark.parametrize("coords", ["gcj02", "bd09"])
def test_phone_app_coordinates_are_converted_exactly(tmp_path, project, coords):
    lon, lat = town_points(50, seed=7)
    forward = wgs84_to_gcj02 if coords == "gcj02" else wgs84_to_bd09
    glon, glat = forward(lon, lat)
    assert GEOD.inv(glon, glat, lon, lat)[2].min() > 100  # the phone's points are really elsewhere
    csv = tmp_path / f"{coords}.csv"
    pd.DataFrame({"名称": [f"t{i}" for i in range(50)], "经度": glon, "纬度": glat}).to_csv(csv, index=False)
    rep = import_file(project, "toilets", csv, coords=coords)
    assert rep.imported == 50
    back = back_in_wgs84(project, "toilets")
    d = GEOD.inv(back.geometry.x.to_numpy(), back.geometry.y.to_numpy(), lon, lat)[2]
    assert d.max() < ROUND_TRIP_M


def test_wkt_column_for_lines(tmp_path):
    csv = tmp_path / "alleys.csv"
    pd.DataFrame({"名称": ["一巷"], "WKT": ["LINESTRING (117.22 28.30, 117.221 28.301)"],
                  "路面硬化": ["是"]}).to_csv(csv, index=False)
    raw = read_file(csv, kind="alleys")
    assert raw.frame.geometry.iloc[0].geom_type == "LineString"


def test_coordinate_cells():
    assert parse_coordinate("117.2213") == pytest.approx(117.2213)
    assert parse_coordinate("117.2213E") == pytest.approx(117.2213)
    assert parse_coordinate("东经117.5") == pytest.approx(117.5)
    assert parse_coordinate("117°13′30″") == pytest.approx(117.225)
    assert parse_coordinate("28度18分") == pytest.approx(28.3)
    assert parse_coordinate("１１７．２") == pytest.approx(117.2)  # full-width digits
    assert np.isnan(parse_coordinate(""))
    with pytest.raises(ValueError):
        parse_coordinate("不详")


# ------------------------------------------------------------------ column mapping


def test_column_mapping_from_cli_and_settings(tmp_path, project):
    lon, lat = town_points(2)
    csv = tmp_path / "t.csv"
    pd.DataFrame({"厕所名称": ["甲", "乙"], "级别": ["一类", "二类"], "东西": lon, "南北": lat}
                 ).to_csv(csv, index=False)
    with pytest.raises(ImportError_, match="no coordinate columns"):
        read_file(csv, kind="toilets")
    mapping = parse_mapping("厕所名称=name，级别=toilet_class; 东西=经度, 南北=纬度")
    raw = read_file(csv, kind="toilets", mapping=mapping)
    assert raw.frame["name"].tolist() == ["甲", "乙"] and raw.frame["toilet_class"].tolist() == ["一类", "二类"]
    # the same mapping from the project settings
    project.settings.imports.columns = {"toilets": mapping}
    assert import_file(project, "toilets", csv).imported == 2
    with pytest.raises(ImportError_, match="not a field"):
        read_file(csv, kind="toilets", mapping={"厕所名称": "title"})
    with pytest.raises(ImportError_, match="does not have"):
        read_file(csv, kind="toilets", mapping={"名字": "name"})
    with pytest.raises(ImportError_, match="文件列名=字段名"):
        parse_mapping("厕所名称 name")


def test_aliases_and_normalised_names():
    m = match_columns(["名 称", "经度(GCJ02)", "LAT", "ＮＡＭＥ2", "厕位"], spec("toilets"))
    assert m.fields == {"名 称": "name", "厕位": "seats"}
    assert m.lon == "经度(GCJ02)" and m.lat == "LAT"
    assert m.unused == ["ＮＡＭＥ2"]
    # degrees win over surveyors' x/y when a table has both
    m = match_columns(["X", "Y", "经度", "纬度"], spec("toilets"))
    assert (m.lon, m.lat, m.unused) == ("经度", "纬度", ["X", "Y"])


# ------------------------------------------------------------------ GeoPackage and GeoJSON


def test_geopackage_layers_and_geojson(tmp_path, project, toilets_wgs84):
    gpkg = tmp_path / "in.gpkg"
    pyogrio.write_dataframe(toilets_wgs84, gpkg, layer="厕所")
    pyogrio.write_dataframe(toilets_wgs84.iloc[:2], gpkg, layer="其他")
    with pytest.raises(ImportError_, match="--layer"):
        read_file(gpkg, kind="toilets")
    assert import_file(project, "toilets", gpkg, layer="厕所").imported == 5
    gj = tmp_path / "m.geojson"
    markets = gpd.GeoDataFrame({"名称": ["东门市场"], "摊位数": ["120"]},
                               geometry=[shapely.Point(*TOWN).buffer(0.0005)], crs=4326)
    markets.to_file(gj, driver="GeoJSON")
    rep = import_file(project, "markets", gj)
    assert rep.imported == 1
    assert project.store.read("markets")["stalls"].tolist() == [120]


# ------------------------------------------------------------------ OpenStreetMap

OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
 <node id="1" lat="28.3000" lon="117.2200"/>
 <node id="2" lat="28.3000" lon="117.2250"/>
 <node id="3" lat="28.3050" lon="117.2250"/>
 <node id="4" lat="28.3020" lon="117.2210"/>
 <node id="5" lat="28.3020" lon="117.2216"/>
 <node id="6" lat="28.3026" lon="117.2216"/>
 <node id="7" lat="28.3026" lon="117.2210"/>
 <node id="8" lat="28.3000" lon="117.2300"/>
 <node id="10" lat="28.3010" lon="117.2230">
  <tag k="amenity" v="toilets"/><tag k="name" v="东门公厕"/><tag k="wheelchair" v="yes"/>
  <tag k="opening_hours" v="24/7"/>
 </node>
 <node id="11" lat="28.3040" lon="117.2240">
  <tag k="amenity" v="waste_transfer_station"/><tag k="name" v="城东中转站"/>
 </node>
 <node id="12" lat="28.3041" lon="117.2241">
  <tag k="amenity" v="school"/><tag k="name" v="第一小学"/>
 </node>
 <way id="100">
  <nd ref="1"/><nd ref="2"/>
  <tag k="highway" v="primary"/><tag k="name" v="建设路"/>
 </way>
 <way id="101">
  <nd ref="2"/><nd ref="3"/>
  <tag k="highway" v="residential"/><tag k="name" v="东门巷"/>
 </way>
 <way id="102">
  <nd ref="2"/><nd ref="8"/>
  <tag k="highway" v="motorway"/>
 </way>
 <way id="103">
  <nd ref="1"/><nd ref="3"/>
  <tag k="highway" v="living_street"/><tag k="name" v="花园弄"/><tag k="surface" v="asphalt"/>
  <tag k="lit" v="yes"/><tag k="width" v="3.5 m"/>
 </way>
 <way id="200">
  <nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="4"/>
  <tag k="amenity" v="marketplace"/><tag k="name" v="东门农贸市场"/>
 </way>
</osm>
"""


@pytest.fixture
def osm_file(tmp_path) -> Path:
    p = tmp_path / "tiny.osm"
    p.write_text(OSM_XML, encoding="utf-8")
    return p


def test_osm_streets(osm_file, project):
    raw = read_file(osm_file, kind="streets")
    by_name = dict(zip(raw.frame["name"], raw.frame["road_class"], strict=True))
    assert by_name == {"建设路": "主干路", "东门巷": "街巷", "花园弄": "街巷"}  # the motorway is left out
    assert any("motorway" in n for n in raw.notes)
    assert sorted(raw.frame["osm_id"]) == ["way/100", "way/101", "way/103"]
    rep = import_file(project, "streets", osm_file)
    assert rep.imported == 3
    assert OSM_ROAD_CLASS["secondary"] == "次干路" and OSM_ROAD_CLASS["motorway"] is None


def test_osm_points_and_areas(osm_file, project):
    toilets = read_file(osm_file, kind="toilets").frame
    assert toilets["name"].tolist() == ["东门公厕"]
    assert toilets["accessible"].tolist() == [True] and toilets["hours"].tolist() == ["24/7"]
    markets = read_file(osm_file, kind="markets").frame
    assert markets["name"].tolist() == ["东门农贸市场"]
    # a market mapped as a way becomes a point at its centroid and keeps its OSM id
    assert markets.geometry.iloc[0].equals_exact(shapely.Point(117.2213, 28.3023), 1e-9)
    assert markets["osm_id"].tolist() == ["way/200"]
    stations = read_file(osm_file, kind="transfer_stations").frame
    assert stations["name"].tolist() == ["城东中转站"]
    alleys = read_file(osm_file, kind="alleys").frame
    assert alleys["name"].tolist() == ["花园弄"]
    assert alleys["hardened"].tolist() == [True] and alleys["width_m"].tolist() == [3.5]
    assert import_file(project, "markets", osm_file).imported == 1
    with pytest.raises(ImportError_, match="OSM files can be imported as"):
        read_file(osm_file, kind="problems")


def test_demo_town_osm_streets():
    path = Path(__file__).resolve().parents[1] / "layers" / "data" / "guixi-center.osm"
    raw = read_file(path, kind="streets")
    classes = raw.frame["road_class"].value_counts()
    assert classes["主干路"] > 0 and classes["次干路"] > 0 and classes["街巷"] > 0
    assert raw.frame.geometry.geom_type.isin(["LineString", "MultiLineString"]).all()


# ------------------------------------------------------------------ errors


def test_unreadable_inputs(tmp_path):
    with pytest.raises(ImportError_, match="no such file"):
        read_file(tmp_path / "nope.csv", kind="toilets")
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ImportError_, match="xlsx"):
        read_file(old, kind="toilets")
    csv = tmp_path / "t.csv"
    csv.write_text("名称,经度,纬度\n甲,117.2,28.3\n", encoding="utf-8")
    with pytest.raises(CRSError, match="--coords 'mars'"):
        read_file(csv, kind="toilets", coords="mars")
    empty = tmp_path / "empty.csv"
    empty.write_text("名称,经度,纬度\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="no data rows"):
        read_file(empty, kind="toilets")


def test_zipped_gbk_shapefile(tmp_path, project):
    import zipfile

    shp = tmp_path / "src" / "公厕.shp"
    shp.parent.mkdir()
    write_shp(shp, encoding="GBK", keep_cpg=False)
    z = tmp_path / "公厕.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for part in shp.parent.iterdir():
            zf.write(part, part.name)
    raw = read_file(z, kind="toilets")
    assert raw.frame["name"].tolist() == CHINESE["名称"]
    assert raw.source == "公厕.zip:公厕.shp"
    assert import_file(project, "toilets", z).imported == 3


def test_rejects_of_a_projected_file_can_be_imported_again(tmp_path, project):
    lon, lat = town_points(3)
    frame = gpd.GeoDataFrame({"名称": ["甲", "乙", "丙"], "类别": ["二类", "特类", "三类"]},
                             geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(4527)
    shp = tmp_path / "gk.shp"
    pyogrio.write_dataframe(frame, shp, encoding="UTF-8")
    rep = import_file(project, "toilets", shp)
    assert rep.rejected == 1
    rejects = pd.read_csv(rep.rejects_path, encoding="utf-8-sig", dtype=str)
    rejects.loc[0, "类别"] = "一类"  # the user corrects the file …
    fixed = tmp_path / "fixed.csv"
    rejects.drop(columns=["行号 row", "原因 reasons"]).to_csv(fixed, index=False, encoding="utf-8-sig")
    rep = import_file(project, "toilets", fixed)  # … and imports it: WKT in metres, zone read from the eastings
    assert rep.imported == 1, rep.validation.issues
    back = project.store.read("toilets").to_crs(4326)
    assert GEOD.inv(back.geometry.x.iloc[-1], back.geometry.y.iloc[-1], lon[1], lat[1])[2] < 0.01


def test_osm_road_classes_are_a_setting(osm_file, project):
    project.settings.imports.osm_road_class["primary"] = "次干路"  # a county that disputes the mapping
    project.settings.imports.osm_road_class["residential"] = ""  # … and leaves residential ways out
    import_file(project, "streets", osm_file)
    back = project.store.read("streets")
    assert dict(zip(back["name"], back["road_class"], strict=True)) == {"建设路": "次干路", "花园弄": "街巷"}


def test_geojson_in_metres_despite_its_wgs84_label(tmp_path):
    lon, lat = town_points(2)
    gk = gpd.GeoDataFrame({"名称": ["甲", "乙"]}, geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(4527)
    gj = tmp_path / "gk.geojson"
    gj.write_text(gk.set_crs(None, allow_override=True).to_json(), encoding="utf-8")
    raw = read_file(gj, kind="toilets")
    assert raw.frame.crs.to_epsg() == 4527
    assert any("coordinates are metres" in n for n in raw.notes)
