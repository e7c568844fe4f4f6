"""Facility kinds come from the settings' presets only: any point layer kind works everywhere, others are refused."""

from __future__ import annotations

import json
import re
import warnings

import geopandas as gpd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import synthetic_project

from sanigrid.layers._errors import SettingsError
from sanigrid.layers.catalogue import CATALOGUE, FACILITY_KINDS, NOT_FACILITIES
from sanigrid.layers.settings import FacilityPreset, Settings, load_settings, save_settings


def test_facility_kinds_are_the_point_layers_of_the_catalogue():
    assert set(FACILITY_KINDS) == {k for k, s in CATALOGUE.items()
                                   if s.role == "input" and "Point" in s.geometry and k not in NOT_FACILITIES}
    assert "components" not in FACILITY_KINDS  # street furniture has no service radius
    assert {"toilets", "markets", "transfer_stations", "collection_points"} <= set(FACILITY_KINDS)
    assert set(Settings().facilities) <= set(FACILITY_KINDS)


def test_an_unknown_facility_kind_is_refused_when_the_settings_load(tmp_path):
    path = tmp_path / "sanigrid.toml"
    save_settings(Settings(), path)
    path.write_text(path.read_text(encoding="utf-8") + '\n[facilities.toilet]\nradius_m = 300\nsource = "x"\n',
                    encoding="utf-8")
    with pytest.raises(SettingsError) as e:
        load_settings(path)
    msg = str(e.value)
    assert str(path) in msg and "[facilities]" in msg and "'toilet'" in msg
    assert "one of: " + ", ".join(FACILITY_KINDS) in msg  # the known kinds, all of them
    with pytest.raises(SettingsError, match=r"'公厕' in \[sampling.gap_kinds.车站\]"):
        path.write_text('[sampling.gap_kinds]\n"车站" = ["公厕"]\n', encoding="utf-8")
        load_settings(path)


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """The synthetic town with presets for markets and sample points only (no toilets preset at all)."""
    project = synthetic_project(tmp_path_factory.mktemp("kinds") / "town", n_problems=30)
    project.settings.facilities = {
        "markets": Settings().facilities["markets"],
        "sample_points": FacilityPreset(radius_m=250, zh="样本点", source="测试用预设 (test preset)"),
    }
    grids = project.store.read("grids")
    pts = grids.geometry.representative_point().iloc[:5]
    project.store.write("sample_points", gpd.GeoDataFrame(
        {"category": "公厕", "name": [f"点{i}" for i in range(5)]}, geometry=list(pts), crs=grids.crs))
    from sanigrid.scripts.analyses import run_demo_analyses

    done = [title for title, _ in run_demo_analyses(project, only="coverage")]  # `sanigrid analyse --only coverage`
    return project, done


def test_coverage_and_analyse_run_for_any_preset_kind(county):
    from sanigrid.geo.coverage import coverage
    from sanigrid.scripts.analyses import run_demo_analyses
    from sanigrid.scripts.coverage import run_coverage

    county, done = county
    assert done == ["覆盖分析 coverage markets", "覆盖分析 coverage sample_points"]
    st = county.store
    areas = st.read("service_areas")
    assert set(areas["facility_kind"]) == {"markets", "sample_points"}
    assert set(st.meta("service_areas")["params"]) == {"markets", "sample_points"}
    # the stored result is geo.coverage's on the same layers (the face adds nothing but the write)
    direct = coverage(st.read("sample_points"), st.read("streets"), st.read("alleys"), kind="sample_points",
                      radius_m=250, grids=st.read("grids"), max_snap_m=county.settings.network.max_snap_m,
                      buffer_m=county.settings.network.area_buffer_m, source="x")
    stored = st.meta("service_areas")["params"]["sample_points"]
    assert stored["radius_m"] == 250 and stored["source"] == "测试用预设 (test preset)"
    assert 0 < direct.summary["coverage_pct"] < 100
    gaps = st.read("coverage_gaps")
    assert gaps.loc[gaps["facility_kind"] == "sample_points", "length_m"].sum() == pytest.approx(
        direct.gaps["length_m"].sum(), rel=1e-9)
    # siting: toilets have no preset here, so analyse suggests sites for the first preset
    done = [title for title, _ in run_demo_analyses(county, only="siting")]
    assert done == ["农贸市场选址 siting markets"]
    assert set(st.read("suggested_sites")["facility_kind"]) == {"markets"}
    # a kind without a preset: refused with the presets there are
    with pytest.raises(ValueError, match=r"no \[facilities.toilets\] preset .*presets: markets, sample_points"):
        run_coverage(county, "toilets")


def test_prints_grid_page_and_map_legend_follow_the_presets(county, monkeypatch):
    from sanigrid.web import gridpage, printmap
    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    county, _ = county
    drawn: dict = {}
    monkeypatch.setattr(printmap, "render_map", lambda layers, **kw: drawn.update(layers=dict(layers), **kw))
    printmap.county_print(county, theme="coverage", facility_kind="sample_points")
    assert list(drawn["layers"]) == ["grids", "service_areas", "streets", "alleys", "coverage_gaps", "sample_points"]
    assert set(drawn["layers"]["service_areas"]["facility_kind"]) == {"sample_points"}
    assert drawn["legend_titles"]["coverage_gaps"] == "覆盖盲区(样本点)"
    assert "样本点 服务半径 250 米 · 依据 测试用预设" in drawn["subtitle"]
    with pytest.raises(ValueError, match="未知设施类型「toilets」; 可选: markets, sample_points"):
        printmap.county_print(county, theme="coverage", facility_kind="toilets")
    assert gridpage.print_kinds(county) == ["grids", "hotspot_clusters", "streets", "alleys", "coverage_gaps",
                                            "markets", "sample_points", "sample_selection", "problems"]
    # the map: service areas and gaps coloured per preset kind, each with its legend entry
    token = add_user(county.store, "kinds-office", role="office")
    c = TestClient(create_app(county, warm=False))
    code = county.store.read("grids")["code"].iloc[0]
    page = c.get(f"/grids/{code}", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200
    starts = [m.end() for m in re.finditer(r"sanigrid\.addLayer\(\w+, ", page.text)]
    every = [json.JSONDecoder().raw_decode(page.text, i)[0] for i in starts]
    configs = {cfg["kind"]: cfg for cfg in every}
    for kind in ("service_areas", "coverage_gaps"):  # one layer per preset kind, in its colour, its own legend entry
        mine = [cfg for cfg in every if cfg["kind"] == kind]
        assert [(c["title"], c["style"]["color"]) for c in mine] == [
            (f"{CATALOGUE[kind].zh} · 农贸市场", CATALOGUE["markets"].style.color),
            (f"{CATALOGUE[kind].zh} · 样本点", CATALOGUE["sample_points"].style.color)]
    assert configs["sample_points"]["title"] == "样本点"
