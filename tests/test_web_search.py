"""The map's search index: what it finds, how it ranks, and that it is built once per store version."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from webproject import synthetic_project

from sanigrid.web import search as ws


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("search") / "town", n_problems=200)
    toilets = project.store.read("toilets")
    areas = gpd.GeoDataFrame({"facility_kind": "toilets", "facility": toilets["name"], "radius_m": 300.0,
                              "method": "network", "dissolved": False},
                             geometry=toilets.geometry.buffer(50), crs=toilets.crs)
    project.store.write("service_areas", areas)
    return project


def hits(project, q, limit=20):
    idx = ws.search_index(project.store, "wgs84")
    return [(idx.layer[i], idx.label[i], idx.href[i], idx.bounds[i]) for i in ws.find(idx, q, limit)]


def test_a_grid_code_goes_straight_to_its_grid(town):
    code = sorted(town.store.read("grids")["code"])[5]
    (only,) = hits(town, code)
    assert only[0] == "grids" and only[2] == f"/grids/{code}" and only[1].startswith(code)
    g = town.store.read("grids").to_crs(4326)
    w, s, e, n = g[g["code"] == code].total_bounds
    assert only[3] == pytest.approx([w, s, e, n], abs=1e-6)


def test_grid_heads_and_case_numbers_are_found(town):
    grids = town.store.read("grids")
    (head,) = hits(town, "网格长3")
    assert head[0] == "grids" and "网格长3" in head[1]
    assert head[1].startswith(grids.loc[grids["head"] == "网格长3", "code"].iloc[0])
    found = hits(town, "17")
    assert found[0][0] == "problems" and found[0][1].split()[0] == "17"  # the exact case number first
    p = town.store.read("problems").to_crs(4326)
    pt = p[p["problem_id"] == 17].geometry.iloc[0]
    assert found[0][3] == pytest.approx([pt.x, pt.y, pt.x, pt.y], abs=1e-6)
    assert {h[1].split()[0] for h in found if h[0] == "problems"} <= {str(i) for i in range(1, 201) if "17" in str(i)}


def test_input_layers_rank_above_analysis_layers(town):
    found = hits(town, "公厕")
    layers = [h[0] for h in found]
    assert set(layers) == {"toilets", "service_areas"}
    assert layers == sorted(layers, key=lambda k: k != "toilets")  # every toilet before any service area
    exact = hits(town, "公厕2")
    assert [h[0] for h in exact] == ["toilets", "service_areas"]
    streets = hits(town, "解放路")
    assert streets[0][0] == "streets" and streets[0][1] == "解放路"
    assert hits(town, "不存在的地名") == []


def test_index_is_built_once_per_store_version(town, monkeypatch):
    calls = []
    real = ws.build_index
    monkeypatch.setattr(ws, "build_index", lambda store, coords: calls.append(1) or real(store, coords))
    ws._INDEX.clear()
    hits(town, "公厕")
    hits(town, "解放路")
    assert len(calls) == 1
    markets = town.store.read("markets")
    town.store.write("markets", gpd.GeoDataFrame({"name": ["新建农贸市场"], "stalls": [10], "standardized": [False]},
                                                 geometry=[shapely.Point(markets.geometry.iloc[0].x + 5,
                                                                         markets.geometry.iloc[0].y)],
                                                 crs=markets.crs))
    assert [h[1] for h in hits(town, "新建农贸")] == ["新建农贸市场"]
    assert len(calls) == 2


def test_a_write_rebuilds_only_the_part_of_the_layer_written(town, monkeypatch):
    built: list[str] = []
    real = ws.layer_entries
    monkeypatch.setattr(ws, "layer_entries",
                        lambda store, kind, coords: built.append(kind) or real(store, kind, coords))
    ws._INDEX.clear()
    ws._PARTS.clear()
    hits(town, "公厕")
    assert set(built) == {"grids", "streets", "alleys", "markets", "toilets", "problems", "service_areas"} & {
        i.kind for i in town.store.info()}
    built.clear()
    pid = int(town.store.read("problems", columns=["problem_id"])["problem_id"].max())
    town.store.update("problems", "problem_id", {pid: {"category": "暴露垃圾"}})
    hits(town, str(pid))  # the problems' part as it was, while it is rebuilt in the background
    ws.wait_for_rebuilds()
    assert built == ["problems"]  # the other layers' parts are kept
    found = hits(town, str(pid))
    assert found[0][0] == "problems" and found[0][1] == f"{pid} 暴露垃圾"
    # and the index answers as one built from nothing
    def answers():
        return [[(h[0], h[1], h[2], [float(v) for v in h[3]]) for h in hits(town, q)]
                for q in (str(pid), "公厕", "网格")]

    kept = answers()
    ws._INDEX.clear()
    ws._PARTS.clear()
    assert answers() == kept and all(kept)


def test_a_new_report_is_found_by_its_number_at_once(town):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    add_user(town, "searcher", role="office", password="searcher-pass-1", replace=True)
    client = TestClient(create_app(town))
    token = client.post("/api/auth/token", data={"username": "searcher", "password": "searcher-pass-1"}).json()
    h = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/search", params={"q": "1"}, headers=h).status_code == 200  # the index is built
    p = town.store.read("problems")
    new = p.iloc[:1].copy()
    pid = int(p["problem_id"].max()) + 1
    new["problem_id"] = pid
    new["category"] = "乱贴乱画"
    town.store.append("problems", new)
    got = client.get("/api/search", params={"q": str(pid)}, headers=h).json()
    assert got[0]["layer"] == "problems" and got[0]["label"] == f"{pid} 乱贴乱画"
    pt = new.to_crs(4326).geometry.iloc[0]
    assert got[0]["bounds"] == pytest.approx([pt.x, pt.y, pt.x, pt.y], abs=1e-6)
    ws.wait_for_rebuilds()
    again = client.get("/api/search", params={"q": str(pid)}, headers=h).json()
    assert again == got  # the rebuilt index has it too, not twice
    idx = ws.search_index(town.store, "wgs84")
    assert [idx.label[i] for i in ws.find(idx, str(pid), 5)][0] == f"{pid} 乱贴乱画"
    code = sorted(town.store.read("grids")["code"])[2]
    (only,) = client.get("/api/search", params={"q": code}, headers=h).json()  # a grid code: its grid alone
    assert only["layer"] == "grids"
