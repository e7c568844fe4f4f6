"""OSM as it is: broken geometries skipped and counted, facility areas as points, levels, pedestrian areas."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmium
import pyogrio
import pytest
import shapely
from osmium.osm.mutable import Node, Relation, Way

from sanigrid.geo.network import build_network, line_levels
from sanigrid.layers.importers import import_file, read_file
from sanigrid.layers.osm import OSM_ATTRIBUTION, read_elements, read_osm

LON, LAT = 117.22, 28.30
_META = {"version": 1, "changeset": 1, "timestamp": "2026-01-01T00:00:00Z", "uid": 1, "user": "test"}


def _pbf(path: Path) -> Path:
    """A small PBF: two toilets (a node, a building way), a good market way, a self-intersecting
    market relation and a multipolygon whose way lost two of its nodes (as at an extract's edge)."""
    w = osmium.SimpleWriter(str(path))

    def node(i: int, dx: float, dy: float, tags: dict[str, str] | None = None) -> None:
        w.add_node(Node(id=i, location=(LON + dx, LAT + dy), tags=tags or {}, **_META))

    node(1, 0, 0, {"amenity": "toilets", "name": "东门公厕", "opening_hours": "24/7", "wheelchair": "yes"})
    for i, (x, y) in enumerate([(0, 0), (2, 0), (2, 1), (0, 1)], start=10):  # toilet block 2 × 1 (×1e-4°)
        node(i, 0.001 + x * 1e-4, y * 1e-4)
    node(20, 0.003, 0)
    node(21, 0.003 + 4e-4, 4e-4)
    node(22, 0.003 + 4e-4, 0)
    node(23, 0.003, 4e-4)  # 20-21-22-23: a bow tie
    for i, (x, y) in enumerate([(0, 0), (3, 0), (3, 3), (0, 3)], start=30):
        node(i, 0.005 + x * 1e-4, y * 1e-4)
    node(40, 0.007, 0)  # nodes 41 and 42 are missing from the extract
    ways = [(100, [10, 11, 12, 13, 10], {"amenity": "toilets", "name": "西街公厕", "building": "yes",
                                         "opening_hours": "06:00-22:00"}),
            (200, [20, 21, 22, 23, 20], {}),
            (300, [30, 31, 32, 33, 30], {"amenity": "marketplace", "name": "东门农贸市场"}),
            (400, [40, 41, 42, 40], {})]
    for wid, nodes, tags in ways:
        w.add_way(Way(id=wid, nodes=nodes, tags=tags, **_META))
    w.add_relation(Relation(id=500, members=[("w", 200, "outer")],
                            tags={"type": "multipolygon", "amenity": "marketplace", "name": "坏市场"}, **_META))
    w.add_relation(Relation(id=600, members=[("w", 400, "outer")],
                            tags={"type": "multipolygon", "landuse": "retail"}, **_META))
    w.close()
    return path


@pytest.fixture
def broken_pbf(tmp_path: Path) -> Path:
    return _pbf(tmp_path / "town.osm.pbf")


def test_the_fixture_breaks_a_whole_layer_read(broken_pbf: Path) -> None:
    # what made `import toilets` fail: one geometry GEOS cannot build refuses the whole layer
    with pytest.raises(shapely.errors.GEOSException):
        pyogrio.read_dataframe(broken_pbf, layer="multipolygons")


def test_broken_multipolygon_never_hides_the_toilets(broken_pbf: Path, project) -> None:
    el = read_elements(broken_pbf, "multipolygons")
    assert sorted(el.broken) == ["relation/500", "relation/600"]  # skipped and counted, by id
    assert sorted(el.frame["osm_id"]) == ["way/100", "way/300"]

    toilets = read_osm(broken_pbf, kind="toilets")
    t = toilets.frame.set_index("osm_id")
    assert sorted(t.index) == ["node/1", "way/100"]
    assert (t.geometry.geom_type == "Point").all()
    # the building becomes its centroid (a rectangle: the middle of its corners)
    assert t.loc["way/100"].geometry.equals_exact(shapely.Point(LON + 0.001 + 1e-4, LAT + 0.5e-4), 1e-9)
    assert t.loc["node/1"].geometry.equals_exact(shapely.Point(LON, LAT), 1e-9)
    assert t["hours"].to_dict() == {"node/1": "24/7", "way/100": "06:00-22:00"}  # opening_hours → hours
    assert any("broken geometry" in n and "×2" in n and "relation/500" in n for n in toilets.notes)

    markets = read_osm(broken_pbf, kind="markets").frame
    assert markets["osm_id"].tolist() == ["way/300"] and markets["name"].tolist() == ["东门农贸市场"]
    assert markets.geometry.iloc[0].equals_exact(shapely.Point(LON + 0.005 + 1.5e-4, LAT + 1.5e-4), 1e-9)

    rep = import_file(project, "toilets", broken_pbf, replace=True)
    assert rep.imported == 2
    stored = project.store.read("toilets")
    assert sorted(stored["osm_id"]) == ["node/1", "way/100"]
    assert project.store.meta("toilets")["params"]["attribution"] == OSM_ATTRIBUTION


# ------------------------------------------------------------------ levels: a bridge over a street

def _bridge_frame(*, levels: bool) -> gpd.GeoDataFrame:
    """Street S along y=0 (0…400 m); footbridge B over it at x=200 (y -100…100); ramp R from the
    bridge's north end round to S's east end."""
    return gpd.GeoDataFrame(
        {"name": ["S", "B", "R"], "bridge": [False, levels, False], "layer": [None, 1 if levels else None, None]},
        geometry=[shapely.LineString([(0, 0), (400, 0)]), shapely.LineString([(200, -100), (200, 100)]),
                  shapely.LineString([(200, 100), (400, 100), (400, 0)])], crs="EPSG:4548")


def _distance(net, a: tuple[float, float], b: tuple[float, float]) -> float:
    g = nx.Graph()
    for u, v, length in zip(net.u, net.v, net.length, strict=True):
        if not g.has_edge(u, v) or g[u][v]["w"] > length:
            g.add_edge(int(u), int(v), w=float(length))
    ia = int(np.argmin(np.hypot(*(net.nodes - a).T)))
    ib = int(np.argmin(np.hypot(*(net.nodes - b).T)))
    return float(nx.shortest_path_length(g, ia, ib, weight="w"))


def test_bridge_over_a_street_is_not_a_junction() -> None:
    net = build_network(_bridge_frame(levels=True))
    # by hand: over the bridge (200), along the ramp (200 + 100), back along the street (400)
    assert _distance(net, (200, -100), (0, 0)) == pytest.approx(900.0)
    assert not (np.hypot(*(net.nodes - (200, 0)).T) < 1e-6).any()  # no node where the bridge passes over
    # the same lines all at street level do cross: down the bridge to the street, then west
    flat = build_network(_bridge_frame(levels=False))
    assert _distance(flat, (200, -100), (0, 0)) == pytest.approx(300.0)
    # the ramp still meets the street where it shares its end, and the bridge where it shares a node
    assert _distance(net, (200, 100), (400, 0)) == pytest.approx(300.0)


def test_line_levels() -> None:
    f = gpd.GeoDataFrame({"bridge": [True, False, None, True, False], "tunnel": [False, True, None, False, True],
                          "layer": [None, None, None, 2, 0]}, geometry=[None] * 5)
    assert line_levels(f).tolist() == [1.0, -1.0, 0.0, 2.0, 0.0]
    assert line_levels(gpd.GeoDataFrame(geometry=[None, None])).tolist() == [0.0, 0.0]


OSM_LEVELS = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
 <node id="1" lat="28.3000" lon="117.2200"/>
 <node id="2" lat="28.3000" lon="117.2240"/>
 <node id="3" lat="28.2990" lon="117.2220"/>
 <node id="4" lat="28.3010" lon="117.2220"/>
 <node id="5" lat="28.2990" lon="117.2230"/>
 <node id="6" lat="28.3010" lon="117.2230"/>
 <node id="7" lat="28.3020" lon="117.2240"/>
 <node id="8" lat="28.3020" lon="117.2260"/>
 <node id="9" lat="28.3030" lon="117.2260"/>
 <node id="10" lat="28.3030" lon="117.2240"/>
 <way id="100"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/><tag k="name" v="建设路"/></way>
 <way id="101"><nd ref="3"/><nd ref="4"/><tag k="highway" v="footway"/><tag k="bridge" v="yes"/>
  <tag k="layer" v="1"/></way>
 <way id="102"><nd ref="5"/><nd ref="6"/><tag k="highway" v="residential"/><tag k="name" v="东门巷"/></way>
 <way id="103"><nd ref="2"/><nd ref="7"/><tag k="highway" v="footway"/></way>
 <way id="200"><nd ref="7"/><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="7"/>
  <tag k="highway" v="pedestrian"/><tag k="area" v="yes"/><tag k="name" v="步行广场"/></way>
</osm>
"""


@pytest.fixture
def levels_osm(tmp_path: Path) -> Path:
    p = tmp_path / "levels.osm"
    p.write_text(OSM_LEVELS, encoding="utf-8")
    return p


def test_osm_levels_kept_and_used_by_the_network(levels_osm: Path, project) -> None:
    raw = read_file(levels_osm, kind="streets")
    f = raw.frame.set_index("osm_id")
    assert f.loc["way/101", "bridge"] is True and f.loc["way/101", "layer"] == 1
    assert f.loc["way/100", "bridge"] is False and f.loc["way/100", "layer"] is None
    import_file(project, "streets", levels_osm, replace=True)
    streets = project.store.read("streets")
    assert streets.set_index("osm_id").loc["way/101", "layer"] == 1  # kept through the store
    net = build_network(streets)
    edges = net.edges_frame()
    # the footbridge passes over 建设路 in one piece; the residential street crosses it and is noded
    assert (edges["osm_id"] == "way/101").sum() == 1
    assert (edges["osm_id"] == "way/102").sum() == 2
    assert (edges["osm_id"] == "way/100").sum() == 2  # split where 东门巷 crosses it, not under the bridge


def test_pedestrian_area_becomes_a_walkable_outline(levels_osm: Path) -> None:
    raw = read_file(levels_osm, kind="streets")
    plaza = raw.frame[raw.frame["osm_id"] == "way/200"]
    assert len(plaza) == 1 and plaza["name"].iloc[0] == "步行广场" and plaza["busy"].iloc[0] is True
    line = plaza.geometry.iloc[0]
    assert line.geom_type == "LineString" and line.is_ring
    assert len(line.coords) == 5
    assert any("pedestrian areas" in n and "×1" in n for n in raw.notes)
    alleys = read_file(levels_osm, kind="alleys").frame  # a named pedestrian area is an alley too
    assert alleys["osm_id"].tolist() == ["way/200"]
    # the footway from 建设路 reaches the plaza's corner: one network (the footbridge's ends touch nothing)
    net = build_network(raw.frame.to_crs("EPSG:4548"))
    e = net.edges_frame()
    comp = dict(zip(e["osm_id"], net.component[e["u"].to_numpy()], strict=False))
    assert comp["way/200"] == comp["way/100"] == comp["way/103"] != comp["way/101"]


def test_printed_map_credits_osm_when_its_data_is_on_it(levels_osm: Path, project, monkeypatch) -> None:
    from sanigrid.layers.importers import map_attribution
    from sanigrid.web import printmap

    assert map_attribution(project, ["streets", "grids"]) == project.settings.project.attribution
    import_file(project, "streets", levels_osm)  # appended: the import log records the OSM file
    got = map_attribution(project, ["grids", "streets"])
    assert got.endswith(OSM_ATTRIBUTION) and "OpenStreetMap" in got
    assert map_attribution(project, ["service_areas"]) == got  # computed on the OSM streets
    assert "OpenStreetMap" not in map_attribution(project, ["grids"])
    # the county print passes it to the map
    seen: dict[str, str] = {}
    monkeypatch.setattr(printmap, "render_map", lambda layers, **kw: seen.update(attribution=kw["attribution"]))
    import_file(project, "alleys", levels_osm, replace=True)
    printmap.county_print(project, theme="alleys", fmt="png")
    assert seen["attribution"].endswith(OSM_ATTRIBUTION)
    assert project.store.meta("alleys")["params"]["attribution"] == OSM_ATTRIBUTION  # a replacing import
