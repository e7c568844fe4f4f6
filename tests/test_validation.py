"""Validation rules, the rejects file, --strict, --fix and atomic imports, on small files made here."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from sanigrid.layers.importers import import_file, read_file
from sanigrid.layers.store import GeoPackageStore
from sanigrid.layers.validation import parse_bool, parse_datetime, parse_number, validate
from sanigrid.scripts.cli import app

TOWN = (117.22, 28.30)
HEADER = ["名称", "类别", "经度", "纬度"]


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def toilet_rows(n: int, *, seed: int = 3) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[f"公厕{i}", "二类", round(TOWN[0] + rng.uniform(-0.01, 0.01), 6),
             round(TOWN[1] + rng.uniform(-0.01, 0.01), 6)] for i in range(n)]


def codes(report, severity: str | None = None) -> dict:
    """{row: sorted check codes} for the report's issues."""
    out: dict = {}
    for i in report.issues:
        if severity is None or i.severity == severity:
            out.setdefault(i.row, []).append(i.code)
    return {k: sorted(v) for k, v in out.items()}


def read_rejects(path: Path) -> pd.DataFrame:
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"  # UTF-8 with BOM: Excel opens it
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str)


# ------------------------------------------------------------------ swapped coordinates


def test_swapped_lat_lon_rejected_then_fixed(tmp_path, project):
    rows = toilet_rows(3)
    rows[1][2], rows[1][3] = rows[1][3], rows[1][2]  # "lon" 28.3, "lat" 117.2 on spreadsheet row 3
    f = write_csv(tmp_path / "swapped.csv", rows)
    rep = import_file(project, "toilets", f)
    assert rep.imported == 2 and rep.rejected == 1
    (issue,) = rep.validation.errors
    assert issue.code == "swapped" and issue.row == 3
    assert "swapped.csv, row 3, columns 经度/纬度" in issue.message and "--fix" in issue.message
    rej = read_rejects(rep.rejects_path)
    assert rej["行号 row"].tolist() == ["3"] and "颠倒" in rej["原因 reasons"].iloc[0]
    assert rej["名称"].tolist() == ["公厕1"]  # the user's own columns, to correct and import again

    project2 = project.__class__(project.root.parent / "p2", project.settings, GeoPackageStore(tmp_path / "p2.gpkg"))
    rep = import_file(project2, "toilets", f, fix=True)
    assert rep.imported == 3 and rep.rejected == 0 and rep.warnings == 1
    back = project2.store.read("toilets").to_crs(4326)
    assert back.geometry.x.iloc[1] == pytest.approx(rows[1][3]) and back.geometry.y.iloc[1] == pytest.approx(rows[1][2])


def test_out_of_range_and_zero(tmp_path):
    rows = toilet_rows(3)
    rows[0][2:] = [0, 0]
    rows[1][2:] = [517.2, 28.3]
    rep = validate("toilets", read_file(write_csv(tmp_path / "r.csv", rows), kind="toilets"))
    assert codes(rep) == {2: ["out_of_range"], 3: ["out_of_range"]}


# ------------------------------------------------------------------ piles and duplicates


def test_pile_is_a_warning_not_a_reject(tmp_path, project):
    rows = toilet_rows(10)
    for r in rows[2:8]:  # six records on one default coordinate (within 1 m)
        r[2], r[3] = 117.2200001, 28.3000001
    rows[7][3] = 28.300005  # 0.5 m away: still in the pile
    f = write_csv(tmp_path / "pile.csv", rows)
    project.settings.piles.min_count = 5
    rep = import_file(project, "toilets", f)
    assert rep.imported == 10 and rep.rejected == 0
    piles = [i for i in rep.validation.warnings if i.code == "pile"]
    assert sorted(i.row for i in piles) == [4, 5, 6, 7, 8, 9]
    assert "one of 6 records" in piles[0].message and "default location" in piles[0].message
    # below the threshold nothing is said
    project.settings.piles.min_count = 7
    rep = validate("toilets", read_file(f, kind="toilets"), settings=project.settings)
    assert not rep.warnings


def test_exact_duplicates_in_the_file_and_in_the_store(tmp_path, project):
    rows = toilet_rows(4)
    rows.append(list(rows[1]))  # row 6 copies row 3
    near = list(rows[2])
    near[0] = "另一个名字"  # same place, other name: not a duplicate
    rows.append(near)
    f = write_csv(tmp_path / "dup.csv", rows)
    rep = import_file(project, "toilets", f)
    assert codes(rep.validation, "error") == {6: ["duplicate"]}
    assert "of row 3" in rep.validation.errors[0].message
    assert rep.imported == 5
    # importing the same file again: every row is already in the store
    rep = import_file(project, "toilets", f)
    assert rep.refused and rep.imported == 0
    assert all(i.code == "duplicate" for i in rep.validation.errors)
    assert "already in the store" in rep.validation.errors[0].message
    assert len(project.store.read("toilets")) == 5
    # --replace reloads the layer instead
    rep = import_file(project, "toilets", f, replace=True)
    assert rep.imported == 5 and len(project.store.read("toilets")) == 5


# ------------------------------------------------------------------ attributes


def test_unknown_category_and_unknown_toilet_class(tmp_path, project):
    f = write_csv(tmp_path / "p.csv", [
        ["暴露垃圾", "2026-03-01 08:00", *TOWN],
        ["乱扔果皮", "2026-03-01 09:00", TOWN[0] + 0.001, TOWN[1]],
    ], header=["问题类别", "上报时间", "经度", "纬度"])
    rep = import_file(project, "problems", f)
    assert codes(rep.validation) == {3: ["not_allowed"]}
    msg = rep.validation.errors[0].message
    assert "row 3," in msg and "'乱扔果皮' ×1" in msg and "problem_categories" in msg and "暴露垃圾" in msg
    assert "'乱扔果皮' is not an allowed value" in rep.validation.rejects["原因 reasons"].iloc[0]
    # a county adds the category in its settings and the row passes
    from sanigrid.layers.settings import ProblemCategory
    project.settings.problems.categories.append(ProblemCategory(name="乱扔果皮"))
    assert not validate("problems", read_file(f, kind="problems"), settings=project.settings).errors

    rows = toilet_rows(2)
    rows[0][1] = "特类"
    rep = validate("toilets", read_file(write_csv(tmp_path / "t.csv", rows), kind="toilets"))
    assert codes(rep) == {2: ["not_allowed"]} and "一类, 二类, 三类" in rep.errors[0].message


def test_closed_before_reported(tmp_path):
    f = write_csv(tmp_path / "p.csv", [
        ["暴露垃圾", "2026-03-02 08:00", "2026-03-01 17:00", *TOWN],
        ["暴露垃圾", "2026-03-02 08:00", "2026-03-02 10:00", TOWN[0] + 0.001, TOWN[1]],
    ], header=["类别", "上报时间", "结案时间", "经度", "纬度"])
    rep = validate("problems", read_file(f, kind="problems"))
    assert codes(rep) == {2: ["date_order"]}
    e = rep.errors[0]
    assert e.field == "closed_at" and "结案时间" in e.message and "2026-03-01 17:00" in e.message
    assert len(rep.accepted) == 1


def test_missing_required_and_unparseable_values(tmp_path):
    f = write_csv(tmp_path / "p.csv", [
        ["暴露垃圾", "", *TOWN],
        ["", "2026-03-01", TOWN[0] + 0.001, TOWN[1]],
        ["暴露垃圾", "昨天下午", TOWN[0] + 0.002, TOWN[1]],
    ], header=["类别", "上报时间", "经度", "纬度"])
    rep = validate("problems", read_file(f, kind="problems"))
    assert codes(rep) == {2: ["missing"], 3: ["missing"], 4: ["unparseable"]}
    assert "row 4, column 上报时间 (field reported_at, 上报时间): cannot read '昨天下午'" in rep.errors[2].message
    # a required column absent from the file altogether
    g = write_csv(tmp_path / "q.csv", [["2026-03-01", *TOWN]], header=["上报时间", "经度", "纬度"])
    rep = validate("problems", read_file(g, kind="problems"))
    assert codes(rep) == {2: ["missing"]} and "--map 列名=category" in rep.errors[0].message

    t = write_csv(tmp_path / "t.csv", [["甲", "约6", "也许", *TOWN]],
                  header=["名称", "厕位数", "无障碍", "经度", "纬度"])
    rep = validate("toilets", read_file(t, kind="toilets"))
    assert codes(rep) == {2: ["unparseable", "unparseable"]}


def test_value_parsers():
    for yes in ("是", "Y", "yes", "TRUE", "1", 1, True, "有", "√"):
        assert parse_bool(yes) is True
    for no in ("否", "n", "No", "false", "0", 0, False, "无", "×"):
        assert parse_bool(no) is False
    assert parse_bool("") is None and parse_bool(None) is None
    with pytest.raises(ValueError):
        parse_bool("大概")
    assert parse_number("1,200") == 1200 and parse_number("3.5米") == 3.5 and parse_number("６个", integer=True) == 6
    with pytest.raises(ValueError):
        parse_number("6.5", integer=True)
    assert parse_datetime("2026年3月1日 8时30分") == pd.Timestamp("2026-03-01 08:30")
    assert parse_datetime("2026/3/1") == pd.Timestamp("2026-03-01")
    assert parse_datetime("2026.03.01 14:05:09") == pd.Timestamp("2026-03-01 14:05:09")
    assert parse_datetime(20260301) == pd.Timestamp("2026-03-01")
    assert parse_datetime(46082.5) == pd.Timestamp("2026-03-01 12:00")  # an Excel serial number
    assert parse_datetime("2026-03-01T00:30:00Z") == pd.Timestamp("2026-03-01 08:30")  # to Beijing time


# ------------------------------------------------------------------ geometry


BOW_TIE = "POLYGON ((117.21 28.29, 117.23 28.31, 117.23 28.29, 117.21 28.31, 117.21 28.29))"


def test_bow_tie_polygon_with_and_without_fix(tmp_path):
    f = write_csv(tmp_path / "grids.csv", [
        ["36068100100101", BOW_TIE],
        ["36068100100102", "POLYGON ((117.24 28.29, 117.25 28.29, 117.25 28.30, 117.24 28.29))"],
    ], header=["网格编码", "WKT"])
    rep = validate("grids", read_file(f, kind="grids"))
    assert codes(rep) == {2: ["invalid"]}
    assert "Self-intersection" in rep.errors[0].message and "--fix" in rep.errors[0].message
    rep = validate("grids", read_file(f, kind="grids"), fix=True)
    assert not rep.errors and codes(rep, "warning") == {2: ["invalid"]}
    fixed = rep.accepted.geometry.iloc[0]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and len(fixed.geoms) == 2
    assert fixed.area == pytest.approx(shapely.from_wkt(BOW_TIE).buffer(0).area * 2, rel=0.01)


def test_wrong_geometry_type(tmp_path):
    f = write_csv(tmp_path / "t.csv", [
        ["甲", "LINESTRING (117.22 28.30, 117.23 28.30)"],
        ["乙", "POLYGON ((117.22 28.30, 117.221 28.30, 117.221 28.301, 117.22 28.30))"],
        ["丙", "MULTIPOINT ((117.222 28.302))"],
    ], header=["名称", "wkt"])
    rep = validate("toilets", read_file(f, kind="toilets"))
    assert codes(rep) == {2: ["geometry_type"], 3: ["geometry_type"], 4: ["geometry_type"]}
    rep = validate("toilets", read_file(f, kind="toilets"), fix=True)
    assert codes(rep, "error") == {2: ["geometry_type"]}  # a line cannot become a toilet
    assert rep.accepted.geom_type.tolist() == ["Point", "Point"]


def test_empty_geometry_and_bad_coordinate_cells(tmp_path):
    f = write_csv(tmp_path / "t.csv", [["甲", "二类", "", ""], ["乙", "二类", "117.2x", "28.3"]])
    rep = validate("toilets", read_file(f, kind="toilets"))
    assert codes(rep) == {2: ["empty_geometry"], 3: ["coordinates"]}
    assert "column 经度: '117.2x' is not a coordinate" in rep.errors[1].message


def test_outside_the_county_grids(tmp_path, project):
    grid = gpd.GeoDataFrame({"code": ["36068100100101"]}, geometry=[shapely.box(117.20, 28.28, 117.24, 28.32)],
                            crs=4326)
    project.store.write("grids", grid)
    rows = toilet_rows(2)
    rows.append(["远处公厕", "二类", 117.30, 28.30])  # ~ 5.9 km east of the grids
    rows.append(["边上公厕", "二类", 117.2403, 28.30])  # 30 m outside: within validation.outside_buffer_m
    rep = import_file(project, "toilets", write_csv(tmp_path / "t.csv", rows))
    assert codes(rep.validation) == {4: ["outside"]}
    assert "m outside the county's grids" in rep.validation.errors[0].message
    d = float(rep.validation.errors[0].message.split(" m outside")[0].split()[-1].replace(",", ""))
    assert 5700 < d < 6100
    assert rep.imported == 3
    # without grids the check is skipped, and the report says so
    rep = validate("toilets", read_file(tmp_path / "t.csv", kind="toilets"))
    assert any("far-off check skipped" in n for n in rep.notes)


def test_validate_a_geodataframe_in_gcj02():
    from sanigrid.layers.crs import wgs84_to_gcj02
    lon, lat = wgs84_to_gcj02(np.array([117.22, 117.23]), np.array([28.30, 28.31]))
    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    rep = validate("toilets", frame, coords="gcj02", source="upload.geojson")
    np.testing.assert_allclose(rep.accepted.geometry.x, [117.22, 117.23], atol=1e-7)
    assert frame.geometry.x.iloc[0] == lon[0]  # the caller's frame is not changed


# ------------------------------------------------------------------ strict, atomic, CLI


def test_strict_refuses_the_whole_file(tmp_path, project, toilets_wgs84):
    project.store.write("toilets", toilets_wgs84)
    before = project.store.path.read_bytes()
    rows = toilet_rows(4)
    rows[2][1] = "特类"
    rep = import_file(project, "toilets", write_csv(tmp_path / "t.csv", rows), strict=True)
    assert rep.refused and rep.imported == 0 and "--strict" in rep.reason
    assert rep.rejects_path is not None and rep.rejects_path.exists()
    assert project.store.path.read_bytes() == before


def test_failed_import_leaves_the_store_as_it_was(tmp_path, project, toilets_wgs84, monkeypatch):
    project.store.write("toilets", toilets_wgs84)
    before = project.store.path.read_bytes()

    def boom(self, name, frame):
        raise RuntimeError("disk full, on purpose")

    # the import log is written after the rows, inside the same transaction
    monkeypatch.setattr(GeoPackageStore, "append_table", boom)
    with pytest.raises(RuntimeError, match="on purpose"):
        import_file(project, "toilets", write_csv(tmp_path / "t.csv", toilet_rows(3)))
    assert project.store.path.read_bytes() == before
    assert len(project.store.read("toilets")) == 5
    with pytest.raises(RuntimeError):
        import_file(project, "toilets", write_csv(tmp_path / "t.csv", toilet_rows(3)), replace=True)
    assert project.store.path.read_bytes() == before


def test_import_log(tmp_path, project):
    import_file(project, "toilets", write_csv(tmp_path / "t.csv", toilet_rows(3)))
    log = project.store.read_table("import_log")
    assert log["file"].tolist() == ["t.csv"] and log["accepted"].tolist() == [3]


def test_cli_import_and_validate(tmp_path, project):
    rows = toilet_rows(3)
    rows[0][1] = "特类"
    f = write_csv(tmp_path / "t.csv", rows)
    runner = CliRunner()
    res = runner.invoke(app, ["validate", "toilets", str(f), "--project", str(project.root)])
    assert res.exit_code == 1, res.output
    assert "2 would be accepted" in res.output and "row 2" in res.output
    assert not project.store.has("toilets")  # validate writes nothing
    res = runner.invoke(app, ["import", "toilets", str(f), "--project", str(project.root), "--strict"])
    assert res.exit_code == 1 and "nothing imported" in res.output
    assert not project.store.has("toilets")
    res = runner.invoke(app, ["import", "toilets", str(f), "--project", str(project.root)])
    assert res.exit_code == 0, res.output
    assert "rejects file" in res.output and len(project.store.read("toilets")) == 2
    res = runner.invoke(app, ["import", "toilets", str(f), "-p", str(project.root), "--map", "名称=name,类别=title"])
    assert res.exit_code != 0


def test_cli_validate_without_a_project(tmp_path):
    rows = toilet_rows(2)
    rows[1][2], rows[1][3] = rows[1][3], rows[1][2]
    f = write_csv(tmp_path / "t.csv", rows)
    res = CliRunner().invoke(app, ["validate", "toilets", str(f), "--project", str(tmp_path / "nowhere")])
    assert res.exit_code == 1 and "swapped" in res.output and "default settings" in res.output
    res = CliRunner().invoke(app, ["validate", "toilets", str(f), "-p", str(tmp_path / "nowhere"), "--fix"])
    assert res.exit_code == 0, res.output
