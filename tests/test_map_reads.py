"""The map reads at a glance: one layer per meaning (open and closed cases, each facility kind's coverage),
clusters that count what is shown, only significant Gi* cells, colours that colour-blind readers tell apart,
no "overdue" outline on the ranking, street names from zoom 16 and on prints, CRS and credits in Chinese."""

from __future__ import annotations

import itertools
import json
import re
import warnings

import colorspacious
import geopandas as gpd
import numpy as np
import pytest
import shapely

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.layers import cases
from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user
from sanigrid.web.mappage import build_map, page_html

HTML = {"Accept": "text/html"}


def configs(html: str) -> list[dict]:
    """The layer configs the page hands to sanigrid.js, in order."""
    dec = json.JSONDecoder()
    out = []
    for m in re.finditer(r"sanigrid\.addLayer\(\w+, ", html):
        cfg, _ = dec.raw_decode(html, m.end())
        out.append(cfg)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sanigrid.scripts.coverage import run_coverage

    project = synthetic_project(tmp_path_factory.mktemp("reads") / "town", n_problems=300)
    for kind in ("toilets", "markets"):
        run_coverage(project, kind)
    # Gi* cells: two significant, one not (written as the analysis writes them)
    grids = project.store.read("grids")
    cells = gpd.GeoDataFrame({"cell": [1, 2, 3], "count": [9, 1, 4], "z": [3.1, -2.2, 0.3], "p": [0.002, 0.03, 0.7],
                              "label": ["热点99%", "冷点95%", "不显著"]},
                             geometry=[shapely.box(*g.bounds) for g in grids.geometry[:3]], crs=grids.crs)
    project.store.write("gi_cells", cells)
    token = add_user(project.store, "office", role="office")
    client = TestClient(create_app(project, warm=False))
    return project, client, {"Authorization": f"Bearer {token}"}


def test_open_cases_shown_closed_one_click_away_and_clusters_count_what_is_shown(site):
    project, client, auth = site
    cfgs = [c for c in configs(page_html(build_map(project), title="t")) if c["kind"] == "problems"]
    assert [c["title"] for c in cfgs] == ["问题 · 未结案", "问题 · 已结案"]
    assert cfgs[0]["url"].endswith("?open=1") and cfgs[1]["url"].endswith("?closed=1")
    assert [v[0] for v in cfgs[0]["style"]["by"]["values"]] == [s for s in cases.STATUSES if s != cases.CLOSED]
    assert [v[0] for v in cfgs[1]["style"]["by"]["values"]] == [cases.CLOSED] and cfgs[1]["overdue"] is False
    frame = project.store.read("problems")
    as_of = cases.store_as_of(project.store, settings=project.settings)
    n_open = int(cases.is_open(frame, as_of=as_of).sum())
    assert 0 < n_open < len(frame)
    project.settings.web.map_max_points = 20              # clustered at this zoom
    try:
        for query, want in (("open=1", n_open), ("closed=1", len(frame) - n_open)):
            got = client.get(f"/api/map/problems?{query}&zoom=12", headers=auth).json()
            assert got["clustered"] and sum(f["properties"]["_count"] for f in got["features"]) == want
            late = sum(f["properties"]["_overdue"] for f in got["features"])
            assert late == (int(cases.overdue(frame, as_of=as_of)["overdue"].sum()) if query == "open=1" else 0)
    finally:
        project.settings.web.map_max_points = 1500
    closed = client.get("/api/map/problems?closed=1&zoom=19", headers=auth).json()["features"]
    assert len(closed) == len(frame) - n_open
    assert client.get("/api/map/problems?closed=1&open=1", headers=auth).status_code == 422


def test_coverage_is_one_layer_per_facility_kind_in_its_colour(site):
    project, client, auth = site
    html = page_html(build_map(project), title="t")
    cfgs = configs(html)
    for kind in ("service_areas", "coverage_gaps"):
        mine = [c for c in cfgs if c["kind"] == kind]
        assert [c["title"] for c in mine] == [f"{CATALOGUE[kind].zh} · 公厕", f"{CATALOGUE[kind].zh} · 农贸市场"]
        assert [c["style"]["color"] for c in mine] == [CATALOGUE["toilets"].style.color,
                                                       CATALOGUE["markets"].style.color]
        assert all(c["style"]["by"] is None for c in mine)                      # one colour, one legend entry
        for c, fk in zip(mine, ("toilets", "markets"), strict=True):
            assert c["url"].endswith(f"?facility={fk}")
            got = client.get(c["url"], headers=auth).json()["features"]
            assert got and {f["properties"]["facility_kind"] for f in got} == {fk}
        assert mine[0]["labels"]["facility_kind"]["toilets"] == "公厕"       # popups name the kind in Chinese
    # nothing of it is on at start, on the county map or a grid page
    grid = sorted(project.store.read("grids")["code"])[5]
    shown = re.findall(r"(\w+)\.addTo\(map_\w+\)", page_html(build_map(project, grid=grid), title="t"))
    assert not any("coverage" in s for s in shown)


def test_gi_cells_only_significant(site):
    project, client, auth = site
    cfg = next(c for c in configs(page_html(build_map(project), title="t")) if c["kind"] == "gi_cells")
    got = client.get(cfg["url"], headers=auth).json()["features"]
    assert sorted(f["properties"]["label"] for f in got) == ["冷点95%", "热点99%"]
    assert "不显著" not in [v[0] for v in cfg["style"]["by"]["values"]]          # nor in the legend


def test_ranking_has_no_overdue_flag_and_streets_are_named_from_zoom_16(site):
    project, _, _ = site
    cfgs = {c["kind"]: c for c in configs(page_html(build_map(project), title="t"))}
    assert cfgs["streets"]["label_zoom"] == project.settings.web.street_label_zoom == 16
    assert cfgs["streets"]["label_field"] == "name"
    assert all("label_zoom" not in c for k, c in cfgs.items() if k != "streets")
    from importlib.resources import files

    script = files("sanigrid.web").joinpath("static/sanigrid.js").read_text(encoding="utf-8")
    # the black outline is the case flag of a case layer; the ranking's `overdue` is a count
    from sanigrid.web.mappage import layer_config

    assert layer_config(CATALOGUE["scorecard"])["overdue"] is False and "overdue" in CATALOGUE["scorecard"].field_names
    assert "cfg.overdue && props && props.overdue === true" in script


def _cam(hexes: list[str], cvd: str | None) -> np.ndarray:
    rgb = np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in hexes])
    if cvd:
        rgb = np.clip(colorspacious.cspace_convert(rgb, {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100},
                                                   "sRGB1"), 0, 1)
    return colorspacious.cspace_convert(rgb, "sRGB1", "CAM02-UCS")


@pytest.mark.parametrize("cvd", [None, "deuteranomaly", "protanomaly", "tritanomaly"])
def test_status_and_facility_colours_are_told_apart_with_colour_vision_deficiencies(cvd):
    """Every pair of case statuses and every pair of facility kinds at least 12 CAM02-UCS units apart
    (normal vision and simulated full protan/deutan/tritan, colorspacious's Machado et al. 2009 model)."""
    for group in (list(cases.STATUS_COLOURS.values()),
                  [CATALOGUE[k].style.color for k in ("toilets", "markets", "transfer_stations", "collection_points")]):
        cam = _cam(group, cvd)
        worst = min(np.linalg.norm(cam[i] - cam[j]) for i, j in itertools.combinations(range(len(group)), 2))
        assert worst >= 12, (cvd, group, worst)


def test_no_two_meanings_share_a_colour():
    """Statuses, facility kinds and every layer drawn in one colour: all different colours."""
    colours: dict[str, str] = {f"状态 {s}": c for s, c in cases.STATUS_COLOURS.items()}
    for kind, spec in CATALOGUE.items():
        by = spec.style.by or {}
        if kind in ("problems", "service_areas", "coverage_gaps", "boundary", "network_components"):
            continue                              # drawn by status / by facility kind; the outline is black
        if "values" in by:
            colours.update({f"{kind} {k}": c for k, c in by["values"].items() if kind != "gi_cells"})
        elif "ramp" not in by:
            colours[kind] = spec.style.color
    seen: dict[str, str] = {}
    for meaning, colour in colours.items():
        key = colour.lower()
        assert key not in seen, f"{meaning} and {seen[key]} share {colour}"
        seen[key] = meaning


def test_chinese_credits_and_coordinate_system(site):
    project, client, auth = site
    page = client.get("/", headers={**auth, **HTML}).text
    assert '"crs_note": "坐标系 WGS84 (GPS)"' in page
    from pyproj import CRS

    from sanigrid.web.printmap import crs_zh

    want = "2000国家大地坐标系 (CGCS2000) 3度带高斯-克吕格投影 中央经线东经117° (EPSG:4548)"
    assert crs_zh(CRS.from_epsg(4548)) == want
    assert crs_zh(CRS.from_epsg(32650)) == "WGS 84 UTM投影 第50带 (北半球) (EPSG:32650)"


def test_prints_name_streets_at_street_scale_and_colour_coverage_per_kind(site):
    from matplotlib.colors import to_hex

    from sanigrid.web.printmap import draw_map

    project, _, _ = site
    streets = project.store.read("streets")
    gaps = project.store.read("coverage_gaps")
    grid = project.store.read("grids").iloc[[5]]
    near = draw_map({"streets": streets, "coverage_gaps": gaps}, title="t", bbox=tuple(grid.total_bounds))
    far = draw_map({"streets": streets, "coverage_gaps": gaps}, title="t",
                   bbox=tuple(np.array(streets.total_bounds) + [-3000, -3000, 3000, 3000]))
    names = set(streets["name"])
    near_texts = {t.get_text() for t in near.axes[0].texts}
    assert near_texts & names and not ({t.get_text() for t in far.axes[0].texts} & names)
    legend = near.legends[0]
    pairs = zip(legend.get_texts(), legend.legend_handles, strict=True)
    entries = {t.get_text(): to_hex(h.get_color()) for t, h in pairs if t.get_text().startswith("覆盖盲区")}
    assert entries == {"覆盖盲区(公厕)": CATALOGUE["toilets"].style.color,
                       "覆盖盲区(农贸市场)": CATALOGUE["markets"].style.color}
    assert any(t.get_text().startswith("坐标系: 2000国家大地坐标系") for t in near.texts)
