"""Service areas, gaps, demand, per-grid table and toilet checks (hand-made networks, known answers)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sanigrid.geo.coverage import coverage, service_areas, toilet_class_check, toilet_spacing
from sanigrid.geo.network import build_network, insert_points, snap_points

CRS = "EPSG:4548"


def lines(*coords, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols or None, geometry=[shapely.LineString(c) for c in coords], crs=CRS)


def points(*xy, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols or None, geometry=[shapely.Point(p) for p in xy], crs=CRS)


def test_one_street_cut_at_the_exact_cut_off():
    street = lines([(0, 0), (1000, 0)], name=["长街"])
    res = coverage(points((200, 10), name=["公厕A"]), street, kind="toilets", radius_m=300)
    cov = res.segments[res.segments["covered"]]
    assert cov["length_m"].sum() == pytest.approx(500)  # 0 … 500
    np.testing.assert_allclose(sorted(cov["distance_m"]), [200, 300])  # farthest point of each covered part
    assert res.gaps["length_m"].sum() == pytest.approx(500)
    assert res.gaps["distance_m"].max() == pytest.approx(800)
    gap = res.gaps.geometry.iloc[0]
    assert shapely.equals_exact(shapely.normalize(gap), shapely.normalize(shapely.LineString([(500, 0), (1000, 0)])),
                                tolerance=1e-6)
    assert res.summary["coverage_pct"] == pytest.approx(50)
    assert res.params["radius_m"] == 300 and res.params["method"] == "network"


def test_service_area_contains_exactly_the_reachable_edge_parts():
    # a plus sign with 1 km arms and a dog-leg: the facility is 100 m from the centre on the east arm
    net_lines = lines([(-1000, 0), (1000, 0)], [(0, -1000), (0, 1000)], [(1000, 0), (1000, 800)])
    net = build_network(net_lines)
    sn = snap_points(net, gpd.GeoSeries([shapely.Point(100, 0)], crs=CRS), max_snap_m=10)
    net2, nodes = insert_points(net, sn)
    polys, dissolved, _ = service_areas(net2, nodes, radius_m=300, buffer_m=25)
    poly = polys[0]
    assert poly.is_valid
    reachable = shapely.MultiLineString([[(-200, 0), (400, 0)], [(0, -200), (0, 200)]])
    assert reachable.difference(poly.buffer(1e-6)).length == pytest.approx(0, abs=1e-6)
    inside = net_lines.union_all().intersection(poly)
    assert inside.length == pytest.approx(reachable.length, abs=1e-6)
    assert dissolved.equals_exact(poly, tolerance=1e-6) or dissolved.symmetric_difference(poly).area < 1e-3


def test_per_facility_areas_overlap_but_dissolved_is_their_union():
    street = lines([(0, 0), (2000, 0)])
    res = coverage(points((500, 0), (800, 0)), street, kind="toilets", radius_m=300, buffer_m=20)
    areas = res.service_areas
    per = areas[~areas["dissolved"]]
    assert len(per) == 2 and per.geometry.iloc[0].intersects(per.geometry.iloc[1])
    union = shapely.union_all(per.geometry.to_numpy())
    assert areas[areas["dissolved"]].geometry.iloc[0].symmetric_difference(union).area < 1e-3
    assert res.segments[res.segments["covered"]]["length_m"].sum() == pytest.approx(900)


def test_straight_line_mode_uses_discs():
    street = lines([(0, 0), (1000, 0)])
    res = coverage(points((200, 100)), street, kind="markets", radius_m=300, euclidean=True)
    half = np.sqrt(300**2 - 100**2)
    assert res.segments[res.segments["covered"]]["length_m"].sum() == pytest.approx(200 + half, rel=1e-3)
    assert res.summary["method"] == "euclidean"


def test_far_facilities_are_reported_not_attached():
    street = lines([(0, 0), (1000, 0)])
    res = coverage(points((200, 0), (500, 900), name=["近", "远"]), street, kind="toilets", radius_m=300,
                   max_snap_m=200)
    assert list(res.unattached["name"]) == ["远"]
    assert (~res.service_areas["dissolved"]).sum() == 1


def test_uncovered_households_and_grid_table_worst_first():
    street = lines([(0, 0), (1000, 0)], [(1000, 0), (2000, 0)])
    grids = gpd.GeoDataFrame({"code": ["W", "E"]}, geometry=[shapely.box(-10, -100, 1000, 100),
                                                              shapely.box(1000, -100, 2010, 100)], crs=CRS)
    res_ = points((100, 20), (1500, 20), (1900, 20), households=[120, 80, 40])
    res = coverage(points((200, 0)), street, kind="toilets", radius_m=300, residents=res_, grids=grids)
    assert list(res.demand["covered"]) == [True, False, False]
    assert res.summary["households_uncovered"] == 120
    t = res.grid_table
    assert list(t["grid_code"]) == ["E", "W"]  # E has no coverage at all
    assert t.iloc[0]["coverage_pct"] == 0 and t.iloc[0]["households_uncovered"] == 120
    assert t.iloc[1]["coverage_pct"] == pytest.approx(50)


def test_toilet_spacing_on_busy_street():
    street = lines([(0, 0), (2000, 0)], name=["中山路"], busy=[True])
    toilets = points((100, 10), (900, -10), name=["甲", "乙"])
    out = toilet_spacing(toilets, street, busy_max_m=500, ordinary_max_m=1000, near_m=50)
    assert sorted(out["length_m"]) == [800, 1100]
    assert set(zip(out["from_toilet"], out["to_toilet"], strict=True)) == {("甲", "乙"), ("乙", "路端 street end")}
    # the same street as an ordinary street: 1100 > 1000 still
    out2 = toilet_spacing(toilets, street.assign(busy=False), busy_max_m=500, ordinary_max_m=1000, near_m=50)
    assert list(out2["length_m"]) == [1100]


def test_toilet_class_on_main_roads_and_at_markets():
    streets = lines([(0, 0), (1000, 0)], [(0, 500), (1000, 500)], name=["大道", "小巷"],
                    road_class=["主干路", "支路"])
    toilets = points((100, 10), (300, 10), (500, 490), (800, 900),
                     name=["t1", "t2", "t3", "t4"], toilet_class=["三类", "一类", "三类", None])
    markets = points((800, 880), name=["东门市场"])
    out = toilet_class_check(toilets, streets, markets, min_class="二类", road_classes=["主干路", "次干路"], near_m=50)
    assert list(out["name"]) == ["t1", "t4"]
    assert "农贸市场 东门市场" in out.iloc[1]["reason"]


def test_run_coverage_writes_layers_and_xlsx(project):
    from sanigrid.scripts.coverage import run_coverage

    st = project.store
    base = gpd.GeoDataFrame({"name": ["东西路", "南北路"], "road_class": ["主干路", "支路"]},
                            geometry=[shapely.LineString([(117.21, 28.30), (117.23, 28.30)]),
                                      shapely.LineString([(117.22, 28.29), (117.22, 28.31)])], crs=4326)
    st.write("streets", base)
    toilets = gpd.GeoDataFrame({"name": ["公厕1"], "toilet_class": ["三类"]},
                               geometry=[shapely.Point(117.2201, 28.3001)], crs=4326)
    st.write("toilets", toilets)
    out = run_coverage(project, "toilets")
    assert 0 < out["coverage_pct"] < 100
    assert out["class_violations"] == 1
    assert st.meta("service_areas")["params"]["toilets"]["radius_m"] == 300
    assert len(st.read("coverage_gaps")) == 4
    assert len(st.read("network_components")) == 1
    xl = pd.ExcelFile(out["xlsx"])
    assert "网格排名" in xl.sheet_names and "覆盖盲区" in xl.sheet_names
    assert "长度(米)" in pd.read_excel(out["xlsx"], sheet_name="覆盖盲区").columns
    # a second kind keeps the first kind's rows
    st.write("markets", gpd.GeoDataFrame({"name": ["市场"]}, geometry=[shapely.Point(117.225, 28.3)], crs=4326))
    run_coverage(project, "markets")
    kinds = st.read("service_areas")["facility_kind"].tolist()
    assert "toilets" in kinds and "markets" in kinds
    assert set(st.meta("coverage_gaps")["params"]) == {"toilets", "markets"}


def test_threaded_polygons_equal_single_threaded():
    rng = np.random.default_rng(0)
    rows = [[(0, y), (3000, y)] for y in range(0, 3001, 150)] + [[(x, 0), (x, 3000)] for x in range(0, 3001, 150)]
    net = build_network(lines(*rows))
    pts = gpd.GeoSeries(shapely.points(rng.uniform(0, 3000, (120, 2))), crs=CRS)
    net2, nodes = insert_points(net, snap_points(net, pts, max_snap_m=100))
    one, d1, _ = service_areas(net2, nodes, radius_m=300, buffer_m=25, workers=1)
    two, d2, _ = service_areas(net2, nodes, radius_m=300, buffer_m=25, workers=2)
    assert all(a.equals(b) for a, b in zip(one, two, strict=True))
    assert d1.symmetric_difference(d2).area < 1e-6 and d1.is_valid


def _blocks_with_stubs() -> gpd.GeoDataFrame:
    """A 150 m street grid drawn as half-block ways (collinear nodes of degree 2), with an L-shaped dead-end
    alley into every block (a right-angle bend at a node of degree 2, and a dead end)."""
    rows = []
    for i in range(8):
        for j in range(7):
            a, b = j * 150, (j + 1) * 150
            rows += [[(a, i * 150), (a + 75, i * 150)], [(a + 75, i * 150), (b, i * 150)],
                     [(i * 150, a), (i * 150, a + 75)], [(i * 150, a + 75), (i * 150, b)]]
    for i in range(7):
        for j in range(7):
            x, y = i * 150 + 75, j * 150
            rows += [[(x, y), (x, y + 40)], [(x, y + 40), (x + 30, y + 40)]]
    return lines(*rows)


def test_fast_polygons_hold_exactly_the_reached_streets():
    # joined bands, round caps at nodes with room, discs only where the bands leave a gap, Clipper's
    # overlay: every reached part inside and no street metre inside that the plain construction leaves out
    from sanigrid.geo.coverage import _reach_parts
    from sanigrid.geo.network import reach, substrings

    net_lines = _blocks_with_stubs()
    net = build_network(net_lines)
    rng = np.random.default_rng(3)
    e = rng.integers(0, net.n_edges, 40)
    pts = gpd.GeoSeries(shapely.line_interpolate_point(net.geometry[e], rng.uniform(0, 1, 40), normalized=True),
                        crs=CRS)
    net2, nodes = insert_points(net, snap_points(net, pts, max_snap_m=1))
    polys, dissolved, stats = service_areas(net2, nodes, radius_m=260, buffer_m=25)
    assert stats["bands"] < stats["reached_parts"] / 2  # the parts were joined into lines
    k, node, dist = reach(net2, nodes, limit_m=260)
    src, edge, s, t = _reach_parts(net2, k, node, dist, radius_m=260)
    parts = substrings(net2.geometry[edge], s, t)
    streets = shapely.union_all(net_lines.geometry.to_numpy())
    for i, poly in enumerate(polys):
        assert poly.is_valid
        mine = parts[src == i]
        reached = float(shapely.length(mine).sum())
        assert shapely.length(shapely.difference(mine, poly.buffer(1e-6))).sum() < 1e-6
        # the plain construction (a band per part, a disc at every node with room: what the tests above check
        # on hand-made networks) as the oracle: no metre of street inside that it leaves out (a flat cap may
        # lie along a cross street: that is the boundary, not the inside), and the same area but for slivers
        # and the outer corners of bends
        plain = shapely.union_all(np.r_[
            shapely.buffer(mine, 25, quad_segs=2, cap_style="flat", join_style="round"),
            shapely.buffer(shapely.points(net2.nodes[node[(k == i) & (dist <= 235)]]), 25, quad_segs=2)])
        beyond = streets.intersection(poly.buffer(-1e-3)).difference(streets.intersection(plain).buffer(1e-6))
        assert beyond.length < 1e-6
        assert streets.intersection(poly).length >= reached - 1e-4
        assert plain.difference(poly).area < 0.01 * plain.area  # slivers: octagons vs round joins
        # more only at bends where two ways meet: the round join a bend inside one way has as well
        reached_nodes = node[k == i]
        bends = reached_nodes[np.bincount(np.r_[net2.u, net2.v], minlength=net2.n_nodes)[reached_nodes] == 2]
        corners = shapely.union_all(shapely.buffer(shapely.points(net2.nodes[bends]), 25.01))
        assert poly.difference(plain).difference(corners).area < 1e-3
    assert dissolved.symmetric_difference(shapely.union_all(polys)).area < 1e-3


def _areas(net_lines: gpd.GeoDataFrame, at: list[tuple[float, float]], *, radius_m: float, buffer_m: float):
    net = build_network(net_lines)
    net2, nodes = insert_points(net, snap_points(net, gpd.GeoSeries(shapely.points(at), crs=CRS), max_snap_m=1))
    return service_areas(net2, nodes, radius_m=radius_m, buffer_m=buffer_m)


def test_straight_street_area_is_the_band_of_the_reached_length_and_its_caps():
    # reached: 0 … 500 m; the dead end at 0 is reached with 100 m to spare (a half octagon of 25 m, the
    # disc's part beyond the band), the cut-off at 500 m is a flat cap
    polys, dissolved, _ = _areas(lines([(0, 0), (1000, 0)]), [(200, 0)], radius_m=300, buffer_m=25)
    half_octagon = np.sqrt(2) * 25**2  # quad_segs=2: 4 triangles of ½·r²·sin 45°
    assert polys[0].area == pytest.approx(2 * 25 * 500 + half_octagon, abs=1e-3)  # Clipper works in micrometres
    assert polys[0].bounds == pytest.approx((-25, -25, 500, 25), abs=1e-6)
    assert dissolved.area == pytest.approx(polys[0].area, abs=1e-3)


def test_cross_area_counts_the_centre_once():
    # four 1 km arms, the facility at the centre, 300 m along each arm: four 300 × 50 m bands that overlap in
    # the four 25 × 25 m quarters of the centre square
    arms = lines([(0, 0), (1000, 0)], [(0, 0), (-1000, 0)], [(0, 0), (0, 1000)], [(0, 0), (0, -1000)])
    polys, _, _ = _areas(arms, [(0, 0)], radius_m=300, buffer_m=25)
    assert polys[0].area == pytest.approx(4 * 300 * 50 - 4 * 25 * 25, abs=1e-3)
    assert shapely.get_num_interior_rings(polys[0]) == 0


def test_no_holes_where_blocks_are_narrower_than_the_band():
    # 40 m blocks, 25 m each side of every street: every reached block is covered whole, so the area has no
    # hole (a sliver left between bands, caps and discs would show as one)
    rows = [[(0, y), (800, y)] for y in range(0, 801, 40)] + [[(x, 0), (x, 800)] for x in range(0, 801, 40)]
    polys, dissolved, _ = _areas(lines(*rows), [(400, 400), (320, 450), (520, 280)], radius_m=200, buffer_m=25)
    for p in [*polys, dissolved]:
        assert p.is_valid and p.geom_type == "Polygon"
        assert shapely.get_num_interior_rings(p) == 0
    assert dissolved.symmetric_difference(shapely.union_all(polys)).area < 1e-3


def _band(coords, *, rounded: bool = False, b: float = 25.0, loops: bool = False):
    """One line's band as built for the service areas (numpy outline, Clipper's fill)."""
    from sanigrid.geo.coverage import _band_rings, _union_rings

    xy, line, sizes, to_geos = _band_rings(np.array([shapely.LineString(coords)]), np.array([rounded]), b, 2)
    assert list(line) == [0] and list(to_geos) == [loops]
    return _union_rings(xy, sizes, np.zeros(len(sizes), np.int64), 1)[0]


def _band_any(coords, b: float = 25.0):
    from sanigrid.geo.coverage import _band_rings, _union_rings

    xy, _, sizes, _ = _band_rings(np.array([shapely.LineString(coords)]), np.array([False]), b, 2)
    return _union_rings(xy, sizes, np.zeros(len(sizes), np.int64), 1)[0]


OCTANT = 25.0**2 * np.sin(np.pi / 4) / 2  # one of the 8 triangles of a 25 m octagon (quad_segs=2)


def test_band_outline_known_areas():
    b = 25.0
    assert _band([(0, 0), (100, 0)]).area == pytest.approx(2 * b * 100, abs=1e-3)
    assert _band([(0, 0), (100, 0)], rounded=True).area == pytest.approx(2 * b * 100 + 8 * OCTANT, abs=1e-3)
    # an L, either way round: two bands overlapping in a b × b square, the outer corner a quarter octagon
    for turn in (80, -80):
        band = _band([(0, 0), (100, 0), (100, turn)])
        assert band.is_valid and band.area == pytest.approx(2 * b * (100 + 80) - b * b + 2 * OCTANT, abs=1e-3)
        assert band.bounds == pytest.approx((0, min(-b, turn), 100 + b, max(b, turn)), abs=1e-6)
    # a closed square street: four bands, their corners counted once, three outer corners rounded (the
    # fourth is where the line starts and ends: two flat caps; such a line is left to GEOS, which joins
    # them), the block inside a hole
    loop = _band([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)], loops=True)
    assert loop.area == pytest.approx(8 * b * 100 - 4 * b * b + 3 * 2 * OCTANT, abs=1e-3)
    assert shapely.get_num_interior_rings(loop) == 1
    assert shapely.Polygon(loop.interiors[0]).area == pytest.approx((100 - 2 * b) ** 2, abs=1e-3)
    # a U-turn tighter than the band: the arms' bands overlap (60 m across), the 10 m bend's band sticks out
    # 25 m between two quarter octagons; inside, the vertices themselves (a line left to GEOS)
    hairpin = _band([(0, 0), (100, 0), (100, 10), (0, 10)], loops=True)
    assert hairpin.is_valid and shapely.get_num_interior_rings(hairpin) == 0
    assert hairpin.area == pytest.approx(100 * (10 + 2 * b) + 10 * b + 4 * OCTANT, abs=1e-3)


def test_band_outline_between_its_rectangles_and_discs():
    # wiggly lines with segments shorter than the band (the inner sides get the vertex, little loops):
    # every segment's rectangle inside, nothing beyond the discs around the inner vertices
    rng = np.random.default_rng(5)
    for step in (3.0, 12.0, 60.0):
        for _ in range(15):
            xy = np.cumsum(rng.normal(0, step, (int(rng.integers(3, 12)), 2)), axis=0)
            band = _band_any(xy)
            assert band.is_valid
            rects = shapely.union_all([shapely.buffer(shapely.LineString(xy[i:i + 2]), 25, cap_style="flat")
                                       for i in range(len(xy) - 1)])
            discs = shapely.buffer(shapely.MultiPoint(xy[1:-1]), 25.001, quad_segs=64)
            assert rects.difference(band).area < 1e-3
            assert band.difference(rects.union(discs)).area < 1e-3
            geos = shapely.buffer(shapely.LineString(xy), 25, quad_segs=2, cap_style="flat")
            assert band.symmetric_difference(geos).area < 0.1 * geos.area  # GEOS simplifies such lines first


def test_t_junction_area():
    # a T of 1 km arms, the facility at the junction: the straight street one 600 × 50 m band through it,
    # the stem 300 × 50 m from it, overlapping in a 50 × 25 m half square; no disc needed at the junction
    arms = lines([(-1000, 0), (0, 0)], [(0, 0), (1000, 0)], [(0, 0), (0, 1000)])
    polys, _, stats = _areas(arms, [(0, 0)], radius_m=300, buffer_m=25)
    assert polys[0].area == pytest.approx(600 * 50 + 300 * 50 - 50 * 25, abs=1e-3)
    assert stats["bands"] == 2 and stats["discs"] == 0


def test_no_reached_street_no_polygon():
    # a facility not attached (-1), and no facility at all: nothing to draw (the province run met the second)
    net = build_network(lines([(0, 0), (1000, 0)], [(0, 500), (1000, 500)]))
    for nodes in (np.array([-1]), np.array([], np.int64)):
        polys, dissolved, stats = service_areas(net, nodes, radius_m=300, buffer_m=25)
        assert len(polys) == len(nodes) and all(p is None for p in polys) and dissolved is None
        assert stats["bands"] == 0 and stats["discs"] == 0
