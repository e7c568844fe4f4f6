"""Anywhere on Earth in metres, the county boundary layer, far-off and swapped points everywhere."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import CRS, Geod
from typer.testing import CliRunner

from sanigrid.layers._errors import CRSError, SettingsError
from sanigrid.layers.crs import crs_for_lonlat, metric_crs, project_crs, utm_epsg
from sanigrid.layers.importers import import_file, read_file
from sanigrid.layers.project import init_project, open_project
from sanigrid.layers.settings import Settings
from sanigrid.layers.validation import validate

GEOD = Geod(ellps="WGS84")
#: UTM's scale error within a zone (k0 = 0.9996 on the central meridian, < 1.001 at its edge at these latitudes)
UTM_SCALE_TOL = 1e-3
LONDON = (-0.1276, 51.5072)
NEW_YORK = (-73.9857, 40.7484)
HEADER = ["名称", "类别", "经度", "纬度"]


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def around(centre: tuple[float, float], n: int, *, half_deg: float = 0.02, seed: int = 5) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[f"WC {i}", "二类", round(centre[0] + rng.uniform(-half_deg, half_deg), 6),
             round(centre[1] + rng.uniform(-half_deg, half_deg) * 0.6, 6)] for i in range(n)]


def codes(report) -> dict:
    out: dict = {}
    for i in report.issues:
        out.setdefault(i.row, []).append(i.code)
    return {k: sorted(v) for k, v in out.items()}


# ------------------------------------------------------------------ choosing a metric CRS


def test_utm_zone_numbers():
    assert utm_epsg(*LONDON) == 32630 and utm_epsg(*NEW_YORK) == 32618
    assert utm_epsg(151.21, -33.87) == 32756  # Sydney: south
    assert utm_epsg(-180.0, 10) == 32601 and utm_epsg(180.0, 10) == 32660
    assert crs_for_lonlat([117.2, 117.3, 150.0], [28.3, 28.2, 28.1]).to_epsg() == 4548  # median in China: GK
    assert project_crs(-0.13, lat=51.5).to_epsg() == 32630
    assert project_crs(100.0, lat=-5.0).to_epsg() == 32747  # inside the zones' longitudes, not in China


@pytest.mark.parametrize("text, word", [("ESRI:102649", "foot"), ("EPSG:2263", "foot"), ("EPSG:4326", "degrees"),
                                        ("FOO", "not a coordinate system")])
def test_non_metre_crs_refused(text, word):
    with pytest.raises(CRSError, match=word) as e:
        metric_crs(text)
    assert "EPSG:326zz" in str(e.value)  # says what to use
    assert metric_crs("EPSG:32630").to_epsg() == 32630 and metric_crs("EPSG:4548").to_epsg() == 4548


def test_refused_init_leaves_nothing(tmp_path):
    from sanigrid.scripts.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["init", "-p", str(tmp_path / "feet"), "--crs", "ESRI:102649"])
    assert isinstance(res.exception, CRSError) and not (tmp_path / "feet").exists()
    for bad in ("ESRI:102649", "EPSG:4326", "FOO"):
        target = tmp_path / f"p{bad.replace(':', '')}"
        s = Settings()
        object.__setattr__(s.project, "crs", bad)  # past the settings' own check: init_project checks again
        with pytest.raises(CRSError):
            init_project(target, settings=s)
        assert not target.exists()
    # an existing folder keeps only what it had
    (tmp_path / "kept").mkdir()
    res = runner.invoke(app, ["init", "-p", str(tmp_path / "kept"), "--crs", "ESRI:102649"])
    assert isinstance(res.exception, CRSError) and list((tmp_path / "kept").iterdir()) == []
    # a hand-edited sanigrid.toml in feet is refused when the project is opened, with the key named
    p = init_project(tmp_path / "ok")
    text = p.settings_path.read_text(encoding="utf-8")
    assert 'crs = ""' in text  # the key exists for users to edit
    p.settings_path.write_text(text.replace('crs = ""', 'crs = "ESRI:102649"'), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\[project\] crs"):
        open_project(tmp_path / "ok")


@pytest.mark.parametrize("centre, epsg", [(LONDON, 32630), (NEW_YORK, 32618)])
def test_project_outside_china_in_metres(tmp_path, centre, epsg):
    p = init_project(tmp_path / "city")
    rows = around(centre, 12)
    rep = import_file(p, "toilets", write_csv(tmp_path / "t.csv", rows))
    assert rep.imported == 12 and not rep.validation.errors
    assert p.store.crs.to_epsg() == epsg
    assert any(f"EPSG:{epsg}" in n and "UTM zone" in n for n in rep.validation.notes)  # says so
    written = tomllib.loads(p.settings_path.read_text(encoding="utf-8"))
    assert written["project"]["crs"] == f"EPSG:{epsg}" and "[project] crs" in rep.saved
    assert open_project(tmp_path / "city").settings.project.crs == f"EPSG:{epsg}"
    # distances in the store's metres agree with the ellipsoid (pyproj Geod) to UTM's scale error
    stored = p.store.read("toilets")
    assert CRS(stored.crs).axis_info[0].unit_name == "metre"
    xy = np.column_stack([stored.geometry.x, stored.geometry.y])
    lon, lat = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    i, j = np.triu_indices(len(rows), 1)
    planar = np.hypot(*(xy[i] - xy[j]).T)
    _, _, geodesic = GEOD.inv(lon[i], lat[i], lon[j], lat[j])
    np.testing.assert_allclose(planar, geodesic, rtol=UTM_SCALE_TOL)
    assert planar.max() > 1000  # a real spread, not a degenerate check


# ------------------------------------------------------------------ the boundary layer


def london_boundary(tmp_path: Path) -> tuple[Path, shapely.Polygon]:
    """An 'official' polygon around central London, delivered in CGCS2000 geographic (EPSG:4490)."""
    poly = shapely.Polygon([(-0.20, 51.47), (-0.05, 51.47), (-0.05, 51.55), (-0.20, 51.55)])
    path = tmp_path / "县域.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"行政区划名称": ["示范区"], "行政区划代码": ["360681"]},
                                             geometry=[poly], crs=4490), path)
    return path, poly


def test_boundary_layer_import_and_no_leak(tmp_path):
    p = init_project(tmp_path / "c")
    path, poly = london_boundary(tmp_path)
    rep = import_file(p, "boundary", path)
    assert rep.imported == 1
    stored = p.store.read("boundary")
    assert stored.iloc[0]["name"] == "示范区" and stored.iloc[0]["code"] == "360681"
    assert stored.geometry.iloc[0].geom_type in ("Polygon", "MultiPolygon")
    # 30 m east of the real edge: rejected (no 50 m leak), the distance right to a metre
    lon30, lat30, _ = GEOD.fwd(-0.05, 51.50, 90, 30)
    rows = around((-0.12, 51.51), 10, half_deg=0.03) + [["edge", "二类", round(lon30, 7), 51.50]]
    rep = import_file(p, "toilets", write_csv(tmp_path / "t.csv", rows))
    assert codes(rep.validation) == {12: ["outside"]}
    msg = rep.validation.errors[0].message
    assert "outside the county boundary" in msg
    d = float(msg.split(" m outside")[0].split()[-1].replace(",", ""))
    assert d == pytest.approx(30, abs=1.0)
    # the same point with only the grids (no boundary layer) is within their 50 m tolerance
    q = init_project(tmp_path / "g")
    q.store.write("grids", gpd.GeoDataFrame({"code": ["1"]}, geometry=[poly], crs=4326))
    rep = import_file(q, "toilets", write_csv(tmp_path / "t.csv", rows))
    assert not rep.validation.errors and rep.imported == 11
    assert Settings().validation.boundary_buffer_m == 0 and Settings().validation.outside_buffer_m == 50


def test_swapped_pair_found_outside_china(tmp_path):
    p = init_project(tmp_path / "c")
    import_file(p, "boundary", london_boundary(tmp_path)[0])
    rows = around((-0.12, 51.51), 6, half_deg=0.03)
    rows.append(["swapped", "二类", 51.5101, -0.1302])
    rep = import_file(p, "toilets", write_csv(tmp_path / "t.csv", rows))
    assert codes(rep.validation) == {8: ["swapped"]} and rep.imported == 6
    rep = import_file(p, "toilets", write_csv(tmp_path / "s.csv", rows[-1:]), fix=True)
    assert [i.code for i in rep.validation.warnings] == ["swapped"] and rep.imported == 1
    back = p.store.read("toilets").to_crs(4326)
    fixed = back[back["name"] == "swapped"].geometry.iloc[0]
    assert (fixed.x, fixed.y) == pytest.approx((-0.1302, 51.5101), abs=1e-9)


def test_far_off_and_swapped_from_the_layers_spread(tmp_path):
    """No boundary, no grids: 45 km away is an outlier, another continent is rejected, a swap is seen."""
    rows = around(NEW_YORK, 30, half_deg=0.03)
    lon45, lat45, _ = GEOD.fwd(*NEW_YORK, 0, 45_000)
    rows += [["45 km", "二类", round(lon45, 6), round(lat45, 6)], ["london", "二类", *LONDON],
             ["swap", "二类", NEW_YORK[1], NEW_YORK[0]]]
    rep = validate("toilets", read_file(write_csv(tmp_path / "t.csv", rows), kind="toilets"))
    assert codes(rep) == {32: ["outlier"], 33: ["far"], 34: ["swapped"]}
    assert {i.code: i.severity for i in rep.issues} == {"outlier": "warning", "far": "error", "swapped": "error"}
    km = float(next(i for i in rep.issues if i.code == "outlier").message.split(" km from")[0].split()[-1])
    assert km == pytest.approx(45, abs=3)  # from the median location, not the exact centre
    assert any("layer's own spread" in n for n in rep.notes)
    far_km = float(next(i for i in rep.issues if i.code == "far").message.split(" km from")[0].split()[-1]
                   .replace(",", ""))
    assert far_km == pytest.approx(GEOD.inv(*NEW_YORK, *LONDON)[2] / 1000, rel=0.5)  # UTM far from its zone
    # a tight town without outliers raises nothing
    clean = validate("toilets", read_file(write_csv(tmp_path / "c.csv", rows[:30]), kind="toilets"))
    assert not clean.issues


def test_maps_draw_the_boundary(tmp_path):
    from sanigrid.web.mappage import build_map, page_html
    from sanigrid.web.printmap import render_map

    p = init_project(tmp_path / "c")
    path, poly = london_boundary(tmp_path)
    import_file(p, "boundary", path)
    html = page_html(build_map(p), title="t")
    assert "县域边界" in html and '"boundary"' in html
    # the printed map draws it: a PNG with the outline differs from one without it
    import io

    frame = p.store.read("boundary")
    with_b, without = io.BytesIO(), io.BytesIO()
    streets = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.LineString([(-0.15, 51.5), (-0.1, 51.52)])],
                               crs=4326).to_crs(frame.crs)
    render_map({"streets": streets, "boundary": frame}, title="t", path_or_buffer=with_b, fmt="png", dpi=40,
               bbox=tuple(frame.total_bounds))
    render_map({"streets": streets}, title="t", path_or_buffer=without, fmt="png", dpi=40,
               bbox=tuple(frame.total_bounds))
    assert with_b.getvalue() != without.getvalue()
