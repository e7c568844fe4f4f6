"""Files as people have them: English and Traditional headers, value mapping, rejects round trip,
console order, shapefile checks, duplicate lines, and the real NYC 311 sample."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from sanigrid.layers._errors import ImportError_, SanigridError
from sanigrid.layers.catalogue import PROBLEM_STATUSES, spec
from sanigrid.layers.columns import match_columns, parse_mapping, parse_values
from sanigrid.layers.importers import import_file, read_file
from sanigrid.layers.project import init_project, open_project
from sanigrid.layers.settings import ProblemCategory

DATA = Path(__file__).parent / "data"
NYC = DATA / "nyc-311-sample.csv"
US_DATE = "%m/%d/%Y %I:%M:%S %p"
TOWN = (117.22, 28.30)

NYC_STATUS = {"Closed": "结案", "Open": "立案", "In Progress": "处置", "Pending": "派遣", "Assigned": "派遣",
              "Email Sent": "处置"}
NYC_CHANNEL = {"PHONE": "群众举报", "ONLINE": "群众举报", "MOBILE": "群众举报", "UNKNOWN": "其他", "OTHER": "其他"}


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def values_arg(field: str, table: dict[str, str]) -> str:
    return f"{field}:" + ",".join(f"{k}={v}" for k, v in table.items())


# ------------------------------------------------------------------ headers


def test_english_and_traditional_headers():
    nyc = pd.read_csv(NYC, nrows=0).columns
    m = match_columns(nyc, spec("problems"))
    assert m.by_field == {"problem_id": "Unique Key", "reported_at": "Created Date", "closed_at": "Closed Date",
                          "category": "Complaint Type", "description": "Descriptor", "status": "Status",
                          "deadline": "Due Date", "unit": "Agency"}
    assert (m.lon, m.lat) == ("Longitude", "Latitude")
    m = match_columns(["Open/Closed", "Created_Date", "LATITUDE", "LONGITUDE"], spec("problems"))
    assert m.by_field == {"status": "Open/Closed", "reported_at": "Created_Date"} and m.lat == "LATITUDE"
    m = match_columns(["名稱", "地址", "類別", "經度", "緯度"], spec("toilets"))
    assert m.by_field == {"name": "名稱", "address": "地址", "toilet_class": "類別"}
    assert (m.lon, m.lat) == ("經度", "緯度")


def test_traditional_csv_imports(tmp_path, project):
    f = write_csv(tmp_path / "公廁.csv", ["名稱", "地址", "類別", "經度", "緯度"],
                  [["城東公廁", "東門路1號", "二类", TOWN[0], TOWN[1]], ["站前公廁", "站前路", "一类", TOWN[0] + 0.002,
                                                                   TOWN[1]]])
    rep = import_file(project, "toilets", f)
    assert rep.imported == 2 and not rep.validation.issues
    stored = project.store.read("toilets")
    assert list(stored["name"]) == ["城東公廁", "站前公廁"] and list(stored["address"]) == ["東門路1號", "站前路"]
    assert list(stored["toilet_class"]) == ["二类", "一类"]  # cell values are never converted


# ------------------------------------------------------------------ values


def test_parse_values_and_ignored_column():
    assert parse_values(["source:Constituent Call=群众举报,Phone=12345", "status:Closed=结案; status:Open=立案"]) == {
        "source": {"Constituent Call": "群众举报", "Phone": "12345"}, "status": {"Closed": "结案", "Open": "立案"}}
    with pytest.raises(ImportError_, match="FIELD:FROM=TO"):
        parse_values("source=群众举报")
    m = match_columns(["Source", "问题类别", "上报时间"], spec("problems"), mapping=parse_mapping("Source="))
    assert "source" not in m.by_field and m.ignored == ["Source"] and "Source" not in m.unused


def source_file(tmp_path: Path) -> Path:
    rows = [["暴露垃圾", f"2026-03-0{1 + i % 5} 08:00", src, TOWN[0] + 0.001 * i, TOWN[1]]
            for i, src in enumerate(["Constituent Call"] * 6 + ["Inspector"] * 3)]
    return write_csv(tmp_path / "export.csv", ["问题类别", "上报时间", "Source", "经度", "纬度"], rows)


def test_source_column_unknown_values_reported_once(tmp_path, project):
    rep = import_file(project, "problems", source_file(tmp_path))
    v = rep.validation
    assert rep.refused and len(v.rejects) == 9
    unknown = [i for i in v.issues if i.code == "not_allowed"]
    assert len(unknown) == 1 and unknown[0].count == 9  # once, as the distinct values with their counts
    assert "'Constituent Call' ×6, 'Inspector' ×3" in unknown[0].message and "--values source:" in unknown[0].message
    assert v.counts().set_index("check").loc["not_allowed", "count"] == 9
    assert all("is not an allowed value" in r for r in v.rejects["原因 reasons"])  # each row still has its reason


def test_source_ignored_or_mapped_and_saved(tmp_path, project):
    f = source_file(tmp_path)
    rep = import_file(project, "problems", f, mapping={"Source": ""}, write=False)
    assert not rep.validation.errors and rep.validation.accepted["source"].isna().all()
    values = parse_values("source:Constituent Call=群众举报,inspector=督查")  # matched case-insensitively
    rep = import_file(project, "problems", f, values=values, save_mapping=True)
    assert rep.imported == 9 and not rep.validation.errors
    stored = project.store.read("problems")
    assert stored["source"].value_counts().to_dict() == {"群众举报": 6, "督查": 3}
    assert "[imports.values.problems]" in rep.saved
    saved = tomllib.loads(project.settings_path.read_text(encoding="utf-8"))
    assert saved["imports"]["values"]["problems"]["source"] == {"Constituent Call": "群众举报", "inspector": "督查"}
    # the next import of the same export needs no option; the rejects file keeps the file's own values
    again = open_project(project.root)
    rep = import_file(again, "problems", f, write=False)
    assert not rep.validation.errors or {i.code for i in rep.validation.errors} == {"duplicate"}


def test_add_categories(tmp_path, project):
    rows = [[cat, "2026-03-01 08:00", TOWN[0] + 0.001 * i, TOWN[1]]
            for i, cat in enumerate(["Noise", "Noise", "Graffiti", "暴露垃圾", "Noise"])]
    f = write_csv(tmp_path / "c.csv", ["问题类别", "上报时间", "经度", "纬度"], rows)
    rep = import_file(project, "problems", f, add_categories=True)
    assert rep.added_categories == ["Noise", "Graffiti"] and rep.imported == 5  # by frequency, the new ones only
    assert any("2 new problem categories" in n and "Noise, Graffiti" in n for n in rep.validation.notes)
    reopened = open_project(project.root).settings
    default = ProblemCategory.model_fields["deadline"].default
    assert [(c.name, c.deadline) for c in reopened.problems.categories[-2:]] == [("Noise", default),
                                                                                   ("Graffiti", default)]


# ------------------------------------------------------------------ the real NYC 311 sample


def test_nyc_311_sample(tmp_path):
    truth = pd.read_csv(NYC, dtype=str)
    p = init_project(tmp_path / "nyc")
    values = parse_values([values_arg("status", NYC_STATUS), values_arg("source", NYC_CHANNEL)])
    rep = import_file(p, "problems", NYC, mapping={"Open Data Channel Type": "source"}, values=values,
                      add_categories=True, save_mapping=True)
    v = rep.validation
    assert sorted(rep.added_categories) == sorted(truth["Complaint Type"].unique())  # 101 types
    assert len(rep.added_categories) == 101
    no_xy = truth[["Latitude", "Longitude"]].isna().any(axis=1)
    created = pd.to_datetime(truth["Created Date"], format=US_DATE)
    closed = pd.to_datetime(truth["Closed Date"], format=US_DATE)
    bad = no_xy | (closed < created)
    assert v.total == 1000 and len(v.rejects) == int(bad.sum()) and rep.imported == int((~bad).sum())
    assert {i.code for i in v.errors} == {"empty_geometry", "date_order"}
    assert p.store.crs.to_epsg() == 32618  # UTM 18N, chosen and written
    saved = tomllib.loads(p.settings_path.read_text(encoding="utf-8"))
    assert saved["project"]["crs"] == "EPSG:32618"
    assert saved["imports"]["values"]["problems"]["status"] == NYC_STATUS
    assert saved["imports"]["columns"]["problems"] == {"Open Data Channel Type": "source"}
    stored = p.store.read("problems")
    assert set(stored["status"]) <= set(PROBLEM_STATUSES)
    expect = truth.loc[~bad, "Status"].map(NYC_STATUS).value_counts().to_dict()
    assert stored["status"].value_counts().to_dict() == expect
    assert stored["source"].value_counts().to_dict() == \
        truth.loc[~bad, "Open Data Channel Type"].map(NYC_CHANNEL).value_counts().to_dict()
    assert sorted(stored["problem_id"].astype(int)) == sorted(truth.loc[~bad, "Unique Key"].astype(int))
    got = stored.set_index(stored["problem_id"].astype(int)).sort_index()
    want = truth.loc[~bad].set_index(truth.loc[~bad, "Unique Key"].astype(int)).sort_index()
    assert (got["reported_at"] == pd.to_datetime(want["Created Date"], format=US_DATE)).all()
    lonlat = got.geometry.to_crs(4326)
    assert (lonlat.x - want["Longitude"].astype(float)).abs().max() < 1e-7


def test_nyc_statuses_without_mapping_reported_once(tmp_path):
    truth = pd.read_csv(NYC, dtype=str)
    p = init_project(tmp_path / "nyc")
    v = import_file(p, "problems", NYC, write=False).validation
    unknown = {i.field: i for i in v.issues if i.code == "not_allowed"}
    assert set(unknown) == {"category", "status"}  # two messages, not one per row
    counts = truth["Status"].value_counts()
    assert f"'Closed' ×{counts['Closed']}" in unknown["status"].message
    assert unknown["status"].count == len(truth)
    assert f"{truth['Complaint Type'].nunique()} value(s) not allowed" in unknown["category"].message


# ------------------------------------------------------------------ rejects round trip


def test_rejects_file_reimports_as_it_is(tmp_path, project):
    rows = [[f"公厕{i}", "二类", TOWN[0] + 0.001 * i, TOWN[1]] for i in range(4)]
    rows[1][1] = "特类"  # not a class
    rows[2][2] = "一一七"  # not a coordinate
    f = write_csv(tmp_path / "t.csv", ["名称", "类别", "经度", "纬度"], rows)
    rep = import_file(project, "toilets", f)
    assert rep.imported == 2 and rep.rejects_path is not None
    rejects = pd.read_csv(rep.rejects_path, dtype=str, encoding="utf-8-sig")
    assert list(rejects.columns[:2]) == ["行号 row", "原因 reasons"] and len(rejects) == 2
    # re-imported unchanged: the same two rows are refused again, no crash on the added columns
    again = import_file(project, "toilets", rep.rejects_path)
    assert again.rejected == 2 and again.imported == 0
    assert any("a rejects file" in n for n in again.validation.notes)
    # corrected in Excel and imported: every row is in, once
    rejects.loc[rejects["名称"] == "公厕1", "类别"] = "二类"
    rejects.loc[rejects["名称"] == "公厕2", "经度"] = str(TOWN[0] + 0.002)
    fixed = tmp_path / "fixed.csv"
    rejects.to_csv(fixed, index=False, encoding="utf-8-sig")
    done = import_file(project, "toilets", fixed)
    assert done.imported == 2 and not done.validation.errors
    assert sorted(project.store.read("toilets")["name"]) == [f"公厕{i}" for i in range(4)]


def test_rejects_of_a_spatial_file_round_trip(tmp_path, project):
    frame = gpd.GeoDataFrame({"名称": ["a", "b"], "类别": ["二类", "特类"]},
                             geometry=[shapely.Point(TOWN), shapely.Point(TOWN[0] + 0.001, TOWN[1])], crs=4326)
    frame.to_file(tmp_path / "t.geojson")
    rep = import_file(project, "toilets", tmp_path / "t.geojson")
    rejects = pd.read_csv(rep.rejects_path, dtype=str, encoding="utf-8-sig")
    assert "wkt" in rejects.columns
    rejects["类别"] = "三类"
    rejects.to_csv(tmp_path / "fixed.csv", index=False, encoding="utf-8-sig")
    done = import_file(project, "toilets", tmp_path / "fixed.csv")
    assert done.imported == 1
    b = project.store.read("toilets").to_crs(4326).set_index("name").geometry["b"]
    assert (b.x, b.y) == pytest.approx((TOWN[0] + 0.001, TOWN[1]), abs=1e-9)


# ------------------------------------------------------------------ console order and files


def test_console_errors_first_paths_whole_validate_writes_issues(tmp_path, project, monkeypatch):
    from typer.testing import CliRunner

    from sanigrid.scripts.cli import app

    rows = [[f"公厕{i}", "二类", TOWN[0], TOWN[1]] for i in range(20)]  # a pile of 20: warnings on rows 2-21
    rows += [["坏", "特类", TOWN[0] + 0.003, TOWN[1]]]  # row 22: an error, after the warnings in row order
    deep = tmp_path / ("a_very_long_folder_name_" * 4)
    deep.mkdir()
    f = write_csv(deep / "t.csv", ["名称", "类别", "经度", "纬度"], rows)
    monkeypatch.setenv("COLUMNS", "60")
    runner = CliRunner()
    res = runner.invoke(app, ["import", "toilets", str(f), "-p", str(project.root)])
    out = res.output
    first_warning = out.index("one of 20 records")
    assert out.index("'特类'") < first_warning  # errors before warnings
    rejects = sorted((project.root / "outputs").glob("rejects_*.csv"))
    issues = sorted((project.root / "outputs").glob("issues_*.csv"))
    assert len(rejects) == 1 and len(issues) == 1
    assert str(rejects[0].resolve()) in out and str(issues[0].resolve()) in out
    table = pd.read_csv(issues[0], encoding="utf-8-sig")
    assert table["级别 severity"].iloc[0].startswith("错误")  # the issues file lists errors first too
    # validate writes the issues file it mentions, and nothing into the store
    before = len(project.store.read("toilets"))
    res = runner.invoke(app, ["validate", "toilets", str(f), "-p", str(project.root)])
    written = sorted((project.root / "outputs").glob("issues_*.csv"))
    assert len(written) == 2 and res.exit_code == 1
    new = next(p for p in written if p != issues[0])
    # the 20 stored rows are now duplicates (errors), still a pile (warnings), and row 22 is refused again
    assert str(new.resolve()) in res.output and len(pd.read_csv(new, encoding="utf-8-sig")) == 20 + 20 + 1
    assert len(project.store.read("toilets")) == before


# ------------------------------------------------------------------ shapefiles


def test_shapefile_without_dbf(tmp_path):
    frame = gpd.GeoDataFrame({"名称": ["a"]}, geometry=[shapely.Point(TOWN)], crs=4326)
    shp = tmp_path / "t.shp"
    pyogrio.write_dataframe(frame, shp, encoding="UTF-8")
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(ImportError_, match=r"t\.dbf is missing"):
        read_file(shp, kind="toilets")


def test_gbk_export_names_row_and_field(tmp_path, project):
    from sanigrid.layers.export import export_layer

    frame = gpd.GeoDataFrame({"name": ["城东公厕", "笑脸😀公厕"], "toilet_class": ["二类", "一类"]},
                             geometry=[shapely.Point(TOWN), shapely.Point(TOWN[0] + 0.001, TOWN[1])], crs=4326)
    with pytest.raises(SanigridError) as e:
        export_layer(frame, "toilets", tmp_path / "t.shp")
    msg = str(e.value)
    assert "feature 2" in msg and "field name (名称)" in msg and "U+1F600" in msg and "--encoding UTF-8" in msg
    assert not (tmp_path / "t.shp").exists()
    export_layer(frame, "toilets", tmp_path / "u.shp", encoding="UTF-8")
    assert list(read_file(tmp_path / "u.shp", kind="toilets").frame["name"]) == list(frame["name"])


# ------------------------------------------------------------------ duplicate lines


def test_reimporting_the_same_streets_is_caught(tmp_path, project):
    lines = [shapely.LineString([(117.22, 28.30), (117.23, 28.301)]),
             shapely.LineString([(117.22, 28.30), (117.22, 28.31), (117.225, 28.312)])]
    g = gpd.GeoDataFrame({"name": ["东门路", "站前路"], "road_class": ["主干路", "支路"]}, geometry=lines, crs=4326)
    g.to_file(tmp_path / "s.geojson")
    assert import_file(project, "streets", tmp_path / "s.geojson").imported == 2
    rep = import_file(project, "streets", tmp_path / "s.geojson")
    assert rep.imported == 0 and [i.code for i in rep.validation.errors] == ["duplicate", "duplicate"]
    # drawn the other way round, as a one-part MultiLineString: still the same street
    g2 = g.copy()
    g2.geometry = [shapely.MultiLineString([shapely.reverse(lines[0])]), lines[1]]
    g2.iloc[[0]].to_file(tmp_path / "r.geojson")
    rep = import_file(project, "streets", tmp_path / "r.geojson")
    assert [i.code for i in rep.validation.errors] == ["duplicate"]
    # a street that differs by a vertex is new
    g3 = gpd.GeoDataFrame({"name": ["东门路"], "road_class": ["主干路"]},
                          geometry=[shapely.LineString([(117.22, 28.30), (117.2301, 28.301)])], crs=4326)
    g3.to_file(tmp_path / "n.geojson")
    assert import_file(project, "streets", tmp_path / "n.geojson").imported == 1
